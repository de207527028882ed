-- Lines of a product whose cost follows its WAC are found by index, not by
-- scanning the product's history: credit memo lines (valued at WAC).
CREATE INDEX IF NOT EXISTS sale_lines_credit ON sale_lines (product_id) WHERE sale_type = 'credit_memo';
