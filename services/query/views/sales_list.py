"""The sales list (CQRS read view): its page and summary statement.

The sales list has many optional filters. Its statement is assembled from the
fixed fragments below, chosen by *which* filters are present (never from their
values, which are always $n parameters), so that each combination gets its own
plan: a sku filter becomes a semi-join, an absent filter costs nothing. The ORDER
BY key comes from the fixed ``SORT_KEYS`` whitelist. The key expressions are the
ones indexed in shared/migrations/0003_query.sql and 0012_sale_cost_keys.sql; keep
them identical.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from services.query import summaries

# --- sort keys (indexed expressions, see 0003_query.sql) --------------------------------

# A CASE, not coalesce(): under row-level security only a condition the planner can see is
# leak-proof serves as an index condition (0022_rls_date_keys.sql).
DATE_KEY = "(CASE WHEN s.txn_date IS NULL THEN '-infinity'::date ELSE s.txn_date END)"
MARGIN_PCT = "CASE WHEN s.revenue <> 0 THEN (s.revenue - s.cost) * 100 / s.revenue END"


def _margin_pct_key(t: str) -> str:
    """Margin % of the row ``t``; no revenue sorts lowest."""
    return (
        f"coalesce(CASE WHEN {t}.revenue <> 0 THEN ({t}.revenue - {t}.cost) * 100 / {t}.revenue END, "
        "'-Infinity'::numeric)"
    )


@dataclass(frozen=True)
class SortKey:
    #: The key of a sale s.
    expression: str
    #: SQL type the key's text form (kept in the cursor) is cast back to.
    sql_type: str
    #: The same key over sale_cost_keys k, for the keys that follow a sale's cost: they
    #: are indexed there, not in sales (0012_sale_cost_keys.sql says why), and folded
    #: there after the costing engine changes a sale (0014_cost_keys_folded.sql).
    folded: str | None = None


SORT_KEYS: dict[str, SortKey] = {
    "date": SortKey(DATE_KEY, "date"),
    "revenue": SortKey("s.revenue", "numeric"),
    "cost": SortKey("s.cost", "numeric", "k.cost"),
    "margin": SortKey("(s.revenue - s.cost)", "numeric", "(k.revenue - k.cost)"),
    "margin_pct": SortKey(_margin_pct_key("s"), "numeric", _margin_pct_key("k")),
}
DIRECTIONS = {"asc": ("ASC", ">"), "desc": ("DESC", "<")}

# --- sales list filters: fragment per filter, {n} = its parameter number ----------------

SALE_FILTERS: dict[str, str] = {
    # (asyncpg sends date.min as -infinity and date.max as infinity: hence the bounds.)
    "from": f"{DATE_KEY} >= ${{n}}::date AND {DATE_KEY} > '-infinity'::date",
    # A sale with no date is never inside a date range (its key is -infinity).
    "to": f"{DATE_KEY} <= ${{n}}::date AND {DATE_KEY} > '-infinity'::date",
    # The names that match come from the customer_names rollup (every customer of the tenant),
    # so sales are found by name equality, an index condition under row-level security
    # (ILIKE is not leak-proof: on sales it could only filter).
    "customer": (
        "s.customer ILIKE ${n}::text AND s.customer IN ("
        "SELECT t.customer FROM customer_names t WHERE t.tenant_id = $1 AND t.customer ILIKE ${n}::text"
        " UNION SELECT t.customer FROM customer_totals_delta t"
        " WHERE t.tenant_id = $1 AND t.customer ILIKE ${n}::text)"
    ),
    "status": "s.status = ${n}::text",
    "type": "s.type = ${n}::text",
    "source": "s.source = ${n}::text",
    "external_id": "s.external_id = ${n}::text",
    "sku": (
        "EXISTS (SELECT 1 FROM sale_lines l WHERE l.tenant_id = s.tenant_id AND l.sku = ${n}::text"
        " AND l.sale_id = s.id)"
    ),
    "shortage": "s.has_shortage = ${n}::boolean",
    "min_margin_pct": f"{MARGIN_PCT} >= ${{n}}::numeric",
    "max_margin_pct": f"{MARGIN_PCT} <= ${{n}}::numeric",
}
FILTER_ORDER = tuple(SALE_FILTERS)

SALE_COLUMNS = """s.id, s.source, s.type, s.external_id, s.doc_number, s.txn_date, s.customer, s.revenue, s.cost,
       s.status, s.has_shortage, s.updated_at"""

SALES_PAGE = """
SELECT {columns}, {key}::text AS sort_key, {key} AS key
FROM sales s
WHERE {where}
ORDER BY {key} {direction}, s.id {direction}
LIMIT ${limit}"""

# By a key folded into sale_cost_keys: the page of the sales whose keys are folded,
# through the keys' index, merged with the page of the sales whose keys are not (the ids
# of sale_cost_keys_stale's marks, a few right after a re-cost), keyed by the sales
# themselves. Both in one snapshot: a sale is in exactly one of the two, with its current
# key. (The stale check is NOT IN, a hashed subplan built once and probed per row: an
# anti-join could be a hash join, which gives up the index's order.)
FOLDED_KEY_PAGE = """
SELECT page.*
FROM ((SELECT {columns}, {folded}::text AS sort_key, {folded} AS key
       FROM sales s JOIN sale_cost_keys k ON k.sale_id = s.id AND k.tenant_id = $1
       WHERE {where_folded}
         AND k.sale_id NOT IN (SELECT u.id FROM sale_cost_keys_stale x, unnest(x.sale_ids) u(id)
                               WHERE x.tenant_id = $1)
       ORDER BY {folded} {direction}, k.sale_id {direction}
       LIMIT ${limit})
      UNION ALL
      (SELECT {columns}, {key}::text, {key}
       FROM sales s
       WHERE s.id IN (SELECT u.id FROM sale_cost_keys_stale x, unnest(x.sale_ids) u(id) WHERE x.tenant_id = $1)
         AND {where}
       ORDER BY {key} {direction}, s.id {direction}
       LIMIT ${limit})) page
ORDER BY page.key {direction}, page.id {direction}
LIMIT ${limit}"""

# With a customer substring, newest first: the customer names that match (from
# customer_names and the unfolded customer deltas, 0007_query_rollups.sql, which have
# every customer a sale of the tenant has), then for each name its newest sales through
# sales_q_customer_day, merged. (The substring itself is then implied by the name.) A
# customer's sales are a small part of a tenant's, and a substring matches few names.
CUSTOMER_PAGE = """
SELECT p.*
FROM (SELECT t.customer FROM customer_names t WHERE t.tenant_id = $1 AND t.customer ILIKE ${customer}::text
      UNION
      SELECT t.customer FROM customer_totals_delta t WHERE t.tenant_id = $1 AND t.customer ILIKE ${customer}::text
     ) c
CROSS JOIN LATERAL (
    SELECT {columns}, {key}::text AS sort_key, {key} AS key
    FROM sales s
    WHERE s.customer = c.customer
      AND {where}
    ORDER BY {key} {direction}, s.id {direction}
    LIMIT ${limit}) p
ORDER BY p.key {direction}, p.id {direction}
LIMIT ${limit}"""

# By date with a sku alone: the first n distinct (date, sale) of the sku's lines, one
# range of sale_lines_q_sku_day (0030_sku_day_index.sql; a line's date is its sale's),
# then those n sales by primary key. The cost is the page's, whatever share of the
# tenant's sales the sku has.
LINE_DATE_KEY = "(CASE WHEN l.txn_date IS NULL THEN '-infinity'::date ELSE l.txn_date END)"
SKU_DATE_PAGE = """
SELECT {columns}, {key}::text AS sort_key, {key} AS key
FROM (SELECT DISTINCT {line_key} AS key, l.sale_id
      FROM sale_lines l
      WHERE l.tenant_id = $1 AND l.sku = $2::text AND l.sku IS NOT NULL{line_cursor}
      ORDER BY 1 {direction}, 2 {direction}
      LIMIT ${limit}) p
JOIN sales s ON s.id = p.sale_id
WHERE {where}
ORDER BY {key} {direction}, s.id {direction}"""

# The page and the summary of the whole filtered set in one statement (one round trip,
# one snapshot): the summary's one row, joined with the page's rows (none: one row of
# NULLs). The page's parameters come first; the summary's follow them.
SALES_LIST = """
WITH summary AS MATERIALIZED ({summary})
SELECT page.*, summary.count AS summary_count, summary.revenue AS summary_revenue, summary.cost AS summary_cost
FROM summary LEFT JOIN ({page}) page ON true
ORDER BY page.key {direction}, page.id {direction}"""

SALES_SUMMARY = """
SELECT count(*) AS count, coalesce(sum(s.revenue), 0) AS revenue, coalesce(sum(s.cost), 0) AS cost
FROM sales s
WHERE {where}"""


def _where(filters: tuple[str, ...], skip: str | None = None) -> tuple[list[str], int]:
    """``s.tenant_id = $1`` and the fragments of ``filters`` (but ``skip``) numbered from $2."""
    clauses = ["s.tenant_id = $1"]
    for n, name in enumerate(filters, start=2):
        if name != skip:
            clauses.append(SALE_FILTERS[name].format(n=n))
    return clauses, len(filters) + 2


def _sku_by_date(filters: tuple[str, ...], sort: str) -> bool:
    """The list by date with a sku alone: SKU_DATE_PAGE."""
    return filters == ("sku",) and sort == "date"


@lru_cache(maxsize=1024)
def sales_page_sql(filters: tuple[str, ...], sort: str, order: str, after: bool) -> str:
    """The page statement for this combination: params $1 tenant, then the filters in
    ``filters`` order, then (``after``) the cursor's key and id, then the limit."""
    key = SORT_KEYS[sort]
    direction, op = DIRECTIONS[order]
    by_name = "customer" in filters and sort == "date"
    clauses, n = _where(filters, skip="customer" if by_name else "sku" if _sku_by_date(filters, sort) else None)
    folded_clauses = list(clauses)
    line_cursor = ""
    if after:
        cursor = f"{op} (${n}::text::{key.sql_type}, ${n + 1}::bigint)"
        clauses.append(f"({key.expression}, s.id) {cursor}")
        folded_clauses.append(f"({key.folded}, k.sale_id) {cursor}")
        line_cursor = f"\n        AND ({LINE_DATE_KEY}, l.sale_id) {cursor}"
        n += 2
    if by_name:
        return CUSTOMER_PAGE.format(
            columns=SALE_COLUMNS,
            key=key.expression,
            where="\n      AND ".join(clauses),
            direction=direction,
            limit=n,
            customer=filters.index("customer") + 2,
        )
    if _sku_by_date(filters, sort):
        return SKU_DATE_PAGE.format(
            columns=SALE_COLUMNS,
            key=key.expression,
            line_key=LINE_DATE_KEY,
            line_cursor=line_cursor,
            where="\n  AND ".join(clauses),
            direction=direction,
            limit=n,
        )
    if key.folded:
        return FOLDED_KEY_PAGE.format(
            columns=SALE_COLUMNS,
            key=key.expression,
            folded=key.folded,
            where="\n         AND ".join(clauses),
            where_folded="\n         AND ".join(folded_clauses),
            direction=direction,
            limit=n,
        )
    return SALES_PAGE.format(
        columns=SALE_COLUMNS, key=key.expression, where="\n  AND ".join(clauses), direction=direction, limit=n
    )


@lru_cache(maxsize=1024)
def direct_summary_sql(filters: tuple[str, ...]) -> str:
    """The summary summed over the matching sales themselves (no rollup covers these
    filters): params $1 tenant, then the filters in ``filters`` order."""
    clauses, _ = _where(filters)
    return SALES_SUMMARY.format(where="\n  AND ".join(clauses))


@dataclass(frozen=True)
class SalesQuery:
    filters: dict[str, Any]  # filter name -> value, only those given
    sort: str = "date"
    order: str = "desc"
    limit: int = 50
    after: tuple[str, int] | None = None  # (sort key text, id) of the last row of the previous page

    def ordered_filters(self) -> tuple[tuple[str, ...], list[Any]]:
        names = tuple(name for name in FILTER_ORDER if name in self.filters)
        return names, [self.filters[name] for name in names]


@dataclass(frozen=True)
class Statement:
    sql: str
    args: list[Any]
    #: Its best plan is the same whatever the values: it may run as a generic plan,
    #: prepared once per connection (app.GENERIC_POOL), instead of planned each time.
    generic: bool = False


def sales_list_statement(tenant_id: uuid.UUID, q: SalesQuery) -> Statement:
    """The page (``q.limit + 1`` rows at most: the extra one says there is a next page)
    and the summary columns ``summary_count``, ``summary_revenue``, ``summary_cost`` on
    every row; one row with a NULL ``id`` when the page is empty."""
    names, values = q.ordered_filters()
    params = summaries.Params(tenant_id, *values)
    if q.after is not None:
        params.values += [q.after[0], q.after[1]]
    params.values.append(q.limit + 1)
    page = sales_page_sql(names, q.sort, q.order, q.after is not None)
    summary = summaries.sales_summary(params, q.filters) or direct_summary_sql(names)
    sql = SALES_LIST.format(summary=summary, page=page, direction=DIRECTIONS[q.order][0])
    # Statements whose plan is the same whatever the values (planning one costs more than
    # running it): by date, with no filter but dates, the page is a range of sales_q_day
    # and the summary a range of the date rollups; by date with a customer substring, the
    # page walks sales_q_customer_day for the few matching names and the summary reads
    # their customer_totals; by date with a sku, the page is a range of sale_lines_q_sku_day
    # and the summary reads sku_totals; by a folded key with no filter, the page walks that
    # key's index and the summary is the all-time rollup.
    generic = (q.sort == "date" and (set(names) <= {"from", "to"} or names in (("customer",), ("sku",)))) or (
        not names and SORT_KEYS[q.sort].folded
    )
    return Statement(sql, params.values, generic=bool(generic))


def sales_summary_statement(tenant_id: uuid.UUID, q: SalesQuery) -> tuple[str, list[Any]]:
    """The summary alone: from a rollup when one covers the filters (summaries.py),
    else from the sales."""
    params = summaries.Params(tenant_id)
    rolled = summaries.sales_summary(params, q.filters)
    if rolled is not None:
        return rolled, params.values
    names, values = q.ordered_filters()
    return direct_summary_sql(names), [tenant_id, *values]
