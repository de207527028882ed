-- Query service: indexes for the read API (services/query/views.py). Nothing here
-- changes a table the costing engine writes; every index is keyed by tenant first.
-- The expressions below must stay identical to the ones in services/query/views.py
-- (DATE_KEY, MARGIN_KEY, MARGIN_PCT_KEY), or the planner cannot use the indexes.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Sales list, one index per sort (keyset: sort key, then id). A sale removed before
-- any version of it arrived has no date: it sorts as -infinity (oldest).
-- The date index also carries the totals so a date-range summary is an index-only scan.
CREATE INDEX IF NOT EXISTS sales_q_date ON sales
    (tenant_id, (coalesce(txn_date, '-infinity'::date)), id) INCLUDE (txn_date, revenue, cost, status);
CREATE INDEX IF NOT EXISTS sales_q_revenue ON sales (tenant_id, revenue, id);
CREATE INDEX IF NOT EXISTS sales_q_cost ON sales (tenant_id, cost, id);
CREATE INDEX IF NOT EXISTS sales_q_margin ON sales (tenant_id, (revenue - cost), id);
-- margin % where revenue <> 0; a sale without revenue sorts as -Infinity (lowest).
CREATE INDEX IF NOT EXISTS sales_q_margin_pct ON sales
    (tenant_id, (coalesce(CASE WHEN revenue <> 0 THEN (revenue - cost) * 100 / revenue END, '-Infinity'::numeric)), id);

-- Filters: exact external id, customer substring (ILIKE through trigrams), shortages,
-- and the few sales that are not posted (status filter, and the margins anti-join).
CREATE INDEX IF NOT EXISTS sales_q_external_id ON sales (tenant_id, external_id);
CREATE INDEX IF NOT EXISTS sales_q_customer_trgm ON sales USING gin (customer gin_trgm_ops);
CREATE INDEX IF NOT EXISTS sales_q_shortage ON sales (tenant_id, (coalesce(txn_date, '-infinity'::date)), id)
    WHERE has_shortage;
CREATE INDEX IF NOT EXISTS sales_q_not_posted ON sales (tenant_id, id) WHERE status <> 'posted';

-- Sales containing a sku.
CREATE INDEX IF NOT EXISTS sale_lines_q_sku ON sale_lines (tenant_id, sku, sale_id) WHERE sku IS NOT NULL;

-- Shortages of a tenant, oldest first in demand order.
CREATE INDEX IF NOT EXISTS sale_lines_q_shortages ON sale_lines
    (tenant_id, txn_date, source_created_at, source, external_id, sale_type, line_no) WHERE shortage_qty > 0;

-- Product margins over a date range: an index-only scan of the inventory lines.
CREATE INDEX IF NOT EXISTS sale_lines_q_margins ON sale_lines (tenant_id, txn_date)
    INCLUDE (product_id, sale_id, sale_type, quantity, revenue, cost, shortage_qty)
    WHERE kind = 'inventory' AND product_id IS NOT NULL;
