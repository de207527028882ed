-- A re-laid line tells its rollup that its sale is posted.
--
-- query_lines_updated (0003_query.sql) looked up the status of the sale of every
-- line whose cost changed: one probe of sales per re-costed sale, ten thousand for a
-- sale backdated before ten thousand lines. A line in the FIFO demand (in_demand) is
-- an inventory line of a posted sale: the costing engine writes a sale's status before
-- its lines (services/costing/sales.py), so when a statement leaves a line in demand,
-- its sale is posted. Only the other lines' sales are looked up.
CREATE OR REPLACE FUNCTION query_lines_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Old rows count negatively, new rows positively, per sale first: unchanged lines
    -- cancel out before the sale's status is looked up.
    INSERT INTO product_totals_delta (tenant_id, day, product_id, lines, quantity_sold, quantity_returned,
                                      revenue, cost, shortage_qty)
    SELECT d.tenant_id, d.day, d.product_id, sum(d.lines), sum(d.sold), sum(d.returned), sum(d.revenue),
           sum(d.cost), sum(d.shortage)
    FROM (SELECT x.sale_id, x.tenant_id, x.day, x.product_id, sum(x.lines) AS lines, sum(x.sold) AS sold,
                 sum(x.returned) AS returned, sum(x.revenue) AS revenue, sum(x.cost) AS cost,
                 sum(x.shortage) AS shortage, bool_or(x.in_demand) AS in_demand
          FROM (SELECT o.sale_id, o.tenant_id, coalesce(o.txn_date, '-infinity'::date) AS day, o.product_id,
                       -1 AS lines, -(CASE WHEN o.sale_type <> 'credit_memo' THEN o.quantity ELSE 0 END) AS sold,
                       -(CASE WHEN o.sale_type = 'credit_memo' THEN o.quantity ELSE 0 END) AS returned,
                       -o.revenue AS revenue, -o.cost AS cost, -o.shortage_qty AS shortage, false AS in_demand
                FROM old_rows o WHERE o.kind = 'inventory' AND o.product_id IS NOT NULL
                UNION ALL
                SELECT n.sale_id, n.tenant_id, coalesce(n.txn_date, '-infinity'::date), n.product_id, 1,
                       CASE WHEN n.sale_type <> 'credit_memo' THEN n.quantity ELSE 0 END,
                       CASE WHEN n.sale_type = 'credit_memo' THEN n.quantity ELSE 0 END,
                       n.revenue, n.cost, n.shortage_qty, n.in_demand
                FROM new_rows n WHERE n.kind = 'inventory' AND n.product_id IS NOT NULL) x
          GROUP BY 1, 2, 3, 4
          HAVING sum(x.lines) <> 0 OR sum(x.sold) <> 0 OR sum(x.returned) <> 0 OR sum(x.revenue) <> 0
              OR sum(x.cost) <> 0 OR sum(x.shortage) <> 0) d
    WHERE d.in_demand OR (SELECT s.status FROM sales s WHERE s.id = d.sale_id) = 'posted'
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;
