-- A statement that updates only lines in the FIFO demand counts them without a per-sale step.
--
-- query_lines_updated (0013_line_rollup_posted.sql) counts a line in product_totals when its
-- sale is posted. It groups the old and new rows per sale first, so that only the sales
-- with no line in demand are looked up. A re-cost updates only lines in demand (the tail
-- of one product): every one of their sales is posted, since the costing engine writes a
-- sale's status before its lines. Grouping ten thousand re-costed lines per sale only to
-- find that out took most of the trigger's 35 ms on the bench's backdated sale
-- (bench/RESULTS.md).
--
-- Now, when every new row of the statement is in demand, the rows are not grouped per sale
-- (the sale's key is left out) and all of them count. An update changes rows, not which
-- rows exist, so every line the statement touched has a new row in demand and its sale is
-- posted: the same rows count as on the per-sale path, with the same signs. Any other
-- statement groups per sale as 0013 did.
CREATE OR REPLACE FUNCTION query_lines_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    all_in_demand boolean := NOT EXISTS (SELECT 1 FROM new_rows n WHERE NOT n.in_demand);
BEGIN
    -- Old rows count negatively, new rows positively, per sale first (unless every line is in
    -- demand): unchanged lines cancel out before the sale's status is looked up.
    INSERT INTO product_totals_delta (tenant_id, day, product_id, lines, quantity_sold, quantity_returned,
                                      revenue, cost, shortage_qty)
    SELECT d.tenant_id, d.day, d.product_id, sum(d.lines), sum(d.sold), sum(d.returned), sum(d.revenue),
           sum(d.cost), sum(d.shortage)
    FROM (SELECT CASE WHEN NOT all_in_demand THEN x.sale_id END AS sale_id, x.tenant_id, x.day, x.product_id,
                 sum(x.lines) AS lines, sum(x.sold) AS sold, sum(x.returned) AS returned,
                 sum(x.revenue) AS revenue, sum(x.cost) AS cost, sum(x.shortage) AS shortage,
                 all_in_demand OR bool_or(x.in_demand) AS in_demand
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
