"""Query service: the read API over the costed state (sales, lines, lot consumption,
product margins, stock, shortages, event status) and its OpenAPI document."""
