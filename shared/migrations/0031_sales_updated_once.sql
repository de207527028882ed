-- One rollup trigger for an update of sales, and one stale mark per statement.
--
-- A sale backdated before ten thousand later lines re-costs ten thousand sales in one
-- UPDATE of sales. Three statement triggers then read its transition tables, each on its
-- own: query_sales_updated (0003_query.sql: sales_totals, and product_totals when a sale
-- becomes or stops being posted), query_sales_keys_updated (0007_query_rollups.sql:
-- customer_totals, sku_totals) and sale_cost_keys_updated (0014_cost_keys_folded.sql: one
-- stale mark per updated sale). Measured on such a re-cost (bench/RESULTS.md), the three took
-- about 90 ms beside the 40 ms of the update itself; a fifth of that was reading and grouping
-- the same old and new rows three times, another fifth writing ten thousand stale marks
-- through their index.
--
-- sales_updated does the same work in one pass: per sale and its dimensions, the old row
-- counts negatively and the new one positively, so unchanged sales cancel out once; every
-- rollup is summed from that. What each rollup receives is unchanged.
--
-- A stale mark now names every sale of one statement whose revenue or cost changed
-- (sale_ids): one row and one index entry per statement instead of one per sale. The
-- invariant of 0014 is unchanged, read through the arrays: a sale that no mark names has
-- keys equal to its revenue and cost. The sales list (services/query/views/sales_list.py)
-- and the folder (services/query/rollups.py) read the marks' ids.
ALTER TABLE sale_cost_keys_stale ADD COLUMN IF NOT EXISTS sale_ids bigint[];
UPDATE sale_cost_keys_stale SET sale_ids = ARRAY[sale_id] WHERE sale_ids IS NULL;
ALTER TABLE sale_cost_keys_stale ALTER COLUMN sale_ids SET NOT NULL;
DROP INDEX IF EXISTS sale_cost_keys_stale_sale;
ALTER TABLE sale_cost_keys_stale DROP COLUMN IF EXISTS sale_id;
CREATE INDEX IF NOT EXISTS sale_cost_keys_stale_tenant ON sale_cost_keys_stale (tenant_id);

CREATE OR REPLACE FUNCTION sales_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH d AS MATERIALIZED (  -- per sale and dimensions: what the statement changed
        SELECT x.id, x.tenant_id, x.day, x.customer, x.status, x.type, x.source, x.has_shortage,
               sum(x.sales) AS sales, sum(x.revenue) AS revenue, sum(x.cost) AS cost
        FROM (SELECT o.id, o.tenant_id, coalesce(o.txn_date, '-infinity'::date) AS day, o.customer, o.status,
                     o.type, o.source, o.has_shortage, -1 AS sales, -o.revenue AS revenue, -o.cost AS cost
              FROM old_rows o
              UNION ALL
              SELECT n.id, n.tenant_id, coalesce(n.txn_date, '-infinity'::date), n.customer, n.status, n.type,
                     n.source, n.has_shortage, 1, n.revenue, n.cost
              FROM new_rows n) x
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        HAVING sum(x.sales) <> 0 OR sum(x.revenue) <> 0 OR sum(x.cost) <> 0
    ), totals AS (
        INSERT INTO sales_totals_delta (tenant_id, day, status, type, source, has_shortage, sales, revenue, cost)
        SELECT d.tenant_id, d.day, d.status, d.type, d.source, d.has_shortage, sum(d.sales), sum(d.revenue),
               sum(d.cost)
        FROM d
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(d.sales) <> 0 OR sum(d.revenue) <> 0 OR sum(d.cost) <> 0
    ), customers AS (
        INSERT INTO customer_totals_delta (tenant_id, customer, status, type, source, has_shortage, sales, revenue,
                                           cost)
        SELECT d.tenant_id, d.customer, d.status, d.type, d.source, d.has_shortage, sum(d.sales), sum(d.revenue),
               sum(d.cost)
        FROM d
        WHERE d.customer IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(d.sales) <> 0 OR sum(d.revenue) <> 0 OR sum(d.cost) <> 0
    ), skus AS (  -- under the skus the sale is counted under (sale_skus, 0007)
        INSERT INTO sku_totals_delta (tenant_id, sku, status, type, source, has_shortage, sales, revenue, cost)
        SELECT d.tenant_id, k.sku, d.status, d.type, d.source, d.has_shortage, sum(d.sales), sum(d.revenue),
               sum(d.cost)
        FROM d
        CROSS JOIN LATERAL (SELECT r.skus FROM sale_skus r WHERE r.sale_id = d.id OFFSET 0) r
        CROSS JOIN LATERAL unnest(r.skus) k(sku)
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(d.sales) <> 0 OR sum(d.revenue) <> 0 OR sum(d.cost) <> 0
    ), stale AS (  -- the sort keys of the sales whose revenue or cost moved (a sale may repeat)
        INSERT INTO sale_cost_keys_stale (tenant_id, sale_ids)
        SELECT d.tenant_id, array_agg(d.id) FROM d WHERE d.revenue <> 0 OR d.cost <> 0 GROUP BY 1
    ), flipped AS MATERIALIZED (  -- +1: became posted, -1: stopped being posted
        SELECT d.id, sum(d.sales) AS sign FROM d WHERE d.status = 'posted' GROUP BY d.id HAVING sum(d.sales) <> 0
    )
    -- A sale that becomes or stops being posted adds or removes its inventory lines.
    INSERT INTO product_totals_delta (tenant_id, day, product_id, lines, quantity_sold, quantity_returned,
                                      revenue, cost, shortage_qty)
    SELECT l.tenant_id, coalesce(l.txn_date, '-infinity'::date), l.product_id, sum(c.sign),
           sum(c.sign * CASE WHEN l.sale_type <> 'credit_memo' THEN l.quantity ELSE 0 END),
           sum(c.sign * CASE WHEN l.sale_type = 'credit_memo' THEN l.quantity ELSE 0 END),
           sum(c.sign * l.revenue), sum(c.sign * l.cost), sum(c.sign * l.shortage_qty)
    FROM flipped c
    CROSS JOIN LATERAL (SELECT * FROM sale_lines l WHERE l.sale_id = c.id OFFSET 0) l
    WHERE l.kind = 'inventory' AND l.product_id IS NOT NULL
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS query_sales_updated ON sales;
DROP TRIGGER IF EXISTS query_sales_keys_updated ON sales;
DROP TRIGGER IF EXISTS sale_cost_keys_updated ON sales;
DROP FUNCTION IF EXISTS query_sales_updated();
DROP FUNCTION IF EXISTS query_sales_keys_updated();
DROP FUNCTION IF EXISTS sale_cost_keys_updated();
DROP TRIGGER IF EXISTS sales_updated ON sales;
CREATE TRIGGER sales_updated AFTER UPDATE ON sales REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sales_updated();
