-- The sales list filtered by one sku, by date (services/query/views/sales_list.py
-- SKU_DATE_PAGE): the sku's lines by (date, sale), so a page is the first n distinct
-- sales of one index range, whatever share of the tenant's sales the sku has. Before,
-- the page walked the tenant's sales by date and probed each for a line of the sku
-- (~200 probes for a page of 50 for a sku on a fifth of the sales), or, for a rare sku,
-- took all its sales and sorted them. A line's date is its sale's (the costing engine
-- writes the sale's demand-order columns on each of its lines; services/costing/audit.py
-- checks it). The key is the one of sales_q_day: a CASE, not coalesce(), for row-level
-- security (0022_rls_date_keys.sql).
CREATE INDEX IF NOT EXISTS sale_lines_q_sku_day ON sale_lines
    (tenant_id, sku, (CASE WHEN txn_date IS NULL THEN '-infinity'::date ELSE txn_date END), sale_id)
    WHERE sku IS NOT NULL;
