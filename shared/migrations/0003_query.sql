-- Query service: indexes for the read API (services/query/views.py), keyed by tenant
-- first, and rollup tables kept by triggers (below). No column of a costing table
-- changes. The index expressions must stay identical to the ones in
-- services/query/views.py (DATE_KEY, MARGIN_KEY, MARGIN_PCT_KEY), or the planner
-- cannot use the indexes. Safe to re-run.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Sales list, one index per sort (keyset: sort key, then id). A sale removed before
-- any version of it arrived has no date: it sorts as -infinity (oldest).
CREATE INDEX IF NOT EXISTS sales_q_date ON sales (tenant_id, (coalesce(txn_date, '-infinity'::date)), id);
CREATE INDEX IF NOT EXISTS sales_q_revenue ON sales (tenant_id, revenue, id);
CREATE INDEX IF NOT EXISTS sales_q_cost ON sales (tenant_id, cost, id);
CREATE INDEX IF NOT EXISTS sales_q_margin ON sales (tenant_id, (revenue - cost), id);
-- margin % where revenue <> 0; a sale without revenue sorts as -Infinity (lowest).
CREATE INDEX IF NOT EXISTS sales_q_margin_pct ON sales
    (tenant_id, (coalesce(CASE WHEN revenue <> 0 THEN (revenue - cost) * 100 / revenue END, '-Infinity'::numeric)), id);

-- Filters: exact external id, customer substring (ILIKE through trigrams), shortages,
-- and the few sales that are not posted.
CREATE INDEX IF NOT EXISTS sales_q_external_id ON sales (tenant_id, external_id);
CREATE INDEX IF NOT EXISTS sales_q_customer_trgm ON sales USING gin (customer gin_trgm_ops);
CREATE INDEX IF NOT EXISTS sales_q_shortage ON sales (tenant_id, (coalesce(txn_date, '-infinity'::date)), id)
    WHERE has_shortage;
CREATE INDEX IF NOT EXISTS sales_q_not_posted ON sales (tenant_id, id) WHERE status <> 'posted';

-- Sales containing a sku.
CREATE INDEX IF NOT EXISTS sale_lines_q_sku ON sale_lines (tenant_id, sku, sale_id) WHERE sku IS NOT NULL;

-- Open shortages of a tenant (lines in demand not covered by lots), oldest first in
-- demand order.
DROP INDEX IF EXISTS sale_lines_q_shortages;  -- an early draft of the index below
CREATE INDEX IF NOT EXISTS sale_lines_q_open_shortages ON sale_lines
    (tenant_id, txn_date, source_created_at, source, external_id, sale_type, line_no)
    WHERE shortage_qty > 0 AND in_demand;

-- Product margins read the product_totals rollup below, not the lines.
DROP INDEX IF EXISTS sale_lines_q_margins;  -- an early draft

-- ---------------------------------------------------------------------------------------
-- Rollups: the totals the query API sums over large ranges, kept exact by triggers.
--
-- * sales_totals: per tenant, day and the sale dimensions the list filters on: number
--   of sales, revenue, cost (the summary of GET /api/v1/sales).
-- * product_totals: per tenant, day and product: the inventory lines of posted sales
--   (GET /api/v1/products/margins).
--
-- The triggers only ever INSERT signed deltas into the *_delta tables, in the
-- transaction that changes the sale or line, so the rollups commit with the change and
-- concurrent costing transactions never wait on a shared totals row. The query service
-- folds the deltas into the base tables (services/query/rollups.py); readers add base and
-- deltas in one snapshot, so every change is counted exactly once at any time.
--
-- Invariants: Σ sales_totals(+delta) = per group Σ over sales of (1, revenue, cost);
-- Σ product_totals(+delta) = per group Σ over lines L of f(L, status of L's sale), where
-- f counts an inventory line with a product only while its sale is posted. Every
-- statement that changes a line or a sale's status adds the difference of f.
-- A sale without a date counts under day -infinity.

CREATE TABLE IF NOT EXISTS sales_totals (
    tenant_id    uuid NOT NULL,
    day          date NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL,
    PRIMARY KEY (tenant_id, day, status, type, source, has_shortage)
);

CREATE TABLE IF NOT EXISTS sales_totals_delta (
    id           bigserial PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    day          date NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL
);
CREATE INDEX IF NOT EXISTS sales_totals_delta_tenant ON sales_totals_delta (tenant_id, day);

CREATE TABLE IF NOT EXISTS product_totals (
    tenant_id         uuid NOT NULL,
    day               date NOT NULL,
    product_id        bigint NOT NULL,
    lines             bigint NOT NULL,
    quantity_sold     numeric NOT NULL,
    quantity_returned numeric NOT NULL,
    revenue           numeric NOT NULL,
    cost              numeric NOT NULL,
    shortage_qty      numeric NOT NULL,
    PRIMARY KEY (tenant_id, day, product_id)
);

CREATE TABLE IF NOT EXISTS product_totals_delta (
    id                bigserial PRIMARY KEY,
    tenant_id         uuid NOT NULL,
    day               date NOT NULL,
    product_id        bigint NOT NULL,
    lines             bigint NOT NULL,
    quantity_sold     numeric NOT NULL,
    quantity_returned numeric NOT NULL,
    revenue           numeric NOT NULL,
    cost              numeric NOT NULL,
    shortage_qty      numeric NOT NULL
);
CREATE INDEX IF NOT EXISTS product_totals_delta_tenant ON product_totals_delta (tenant_id, day);

-- sales -> sales_totals ------------------------------------------------------------------

CREATE OR REPLACE FUNCTION query_sales_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sales_totals_delta (tenant_id, day, status, type, source, has_shortage, sales, revenue, cost)
    SELECT n.tenant_id, coalesce(n.txn_date, '-infinity'::date), n.status, n.type, n.source, n.has_shortage,
           count(*), sum(n.revenue), sum(n.cost)
    FROM new_rows n
    GROUP BY 1, 2, 3, 4, 5, 6;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION query_sales_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sales_totals_delta (tenant_id, day, status, type, source, has_shortage, sales, revenue, cost)
    SELECT o.tenant_id, coalesce(o.txn_date, '-infinity'::date), o.status, o.type, o.source, o.has_shortage,
           -count(*), -sum(o.revenue), -sum(o.cost)
    FROM old_rows o
    GROUP BY 1, 2, 3, 4, 5, 6;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION query_sales_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Old rows count negatively, new rows positively: unchanged sales cancel out.
    INSERT INTO sales_totals_delta (tenant_id, day, status, type, source, has_shortage, sales, revenue, cost)
    SELECT d.tenant_id, d.day, d.status, d.type, d.source, d.has_shortage, sum(d.sales), sum(d.revenue), sum(d.cost)
    FROM (SELECT o.tenant_id, coalesce(o.txn_date, '-infinity'::date) AS day, o.status, o.type, o.source,
                 o.has_shortage, -1 AS sales, -o.revenue AS revenue, -o.cost AS cost
          FROM old_rows o
          UNION ALL
          SELECT n.tenant_id, coalesce(n.txn_date, '-infinity'::date), n.status, n.type, n.source, n.has_shortage,
                 1, n.revenue, n.cost
          FROM new_rows n) d
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(d.sales) <> 0 OR sum(d.revenue) <> 0 OR sum(d.cost) <> 0;

    -- A sale that becomes (+1) or stops being (-1) posted adds or removes its inventory lines.
    INSERT INTO product_totals_delta (tenant_id, day, product_id, lines, quantity_sold, quantity_returned,
                                      revenue, cost, shortage_qty)
    WITH flipped AS MATERIALIZED (
        SELECT f.id, sum(f.posted) AS sign
        FROM (SELECT o.id, CASE WHEN o.status = 'posted' THEN -1 ELSE 0 END AS posted FROM old_rows o
              UNION ALL
              SELECT n.id, CASE WHEN n.status = 'posted' THEN 1 ELSE 0 END FROM new_rows n) f
        GROUP BY f.id
        HAVING sum(f.posted) <> 0)
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

-- Before a sale row goes, the lines it still has stop counting (a cascaded delete of its
-- lines then finds no sale and adds nothing).
CREATE OR REPLACE FUNCTION query_sale_deleting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'posted' THEN
        INSERT INTO product_totals_delta (tenant_id, day, product_id, lines, quantity_sold, quantity_returned,
                                          revenue, cost, shortage_qty)
        SELECT l.tenant_id, coalesce(l.txn_date, '-infinity'::date), l.product_id, -count(*),
               -sum(CASE WHEN l.sale_type <> 'credit_memo' THEN l.quantity ELSE 0 END),
               -sum(CASE WHEN l.sale_type = 'credit_memo' THEN l.quantity ELSE 0 END),
               -sum(l.revenue), -sum(l.cost), -sum(l.shortage_qty)
        FROM sale_lines l
        WHERE l.sale_id = OLD.id AND l.kind = 'inventory' AND l.product_id IS NOT NULL
        GROUP BY 1, 2, 3;
    END IF;
    RETURN OLD;
END $$;

-- sale_lines -> product_totals -----------------------------------------------------------
-- The status of a line's sale is read with one index probe (a scalar subquery), so the
-- cost stays linear whatever the planner guesses about the transition tables (plans
-- are cached from the first, often one-row, call); updates never join old and new
-- rows: both are summed with opposite signs, so unchanged lines (re-laid FIFO
-- positions) cancel out before any lookup.

CREATE OR REPLACE FUNCTION query_lines_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO product_totals_delta (tenant_id, day, product_id, lines, quantity_sold, quantity_returned,
                                      revenue, cost, shortage_qty)
    SELECT n.tenant_id, coalesce(n.txn_date, '-infinity'::date), n.product_id, count(*),
           sum(CASE WHEN n.sale_type <> 'credit_memo' THEN n.quantity ELSE 0 END),
           sum(CASE WHEN n.sale_type = 'credit_memo' THEN n.quantity ELSE 0 END),
           sum(n.revenue), sum(n.cost), sum(n.shortage_qty)
    FROM new_rows n
    WHERE n.kind = 'inventory' AND n.product_id IS NOT NULL
      AND (SELECT s.status FROM sales s WHERE s.id = n.sale_id) = 'posted'
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION query_lines_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO product_totals_delta (tenant_id, day, product_id, lines, quantity_sold, quantity_returned,
                                      revenue, cost, shortage_qty)
    SELECT o.tenant_id, coalesce(o.txn_date, '-infinity'::date), o.product_id, -count(*),
           -sum(CASE WHEN o.sale_type <> 'credit_memo' THEN o.quantity ELSE 0 END),
           -sum(CASE WHEN o.sale_type = 'credit_memo' THEN o.quantity ELSE 0 END),
           -sum(o.revenue), -sum(o.cost), -sum(o.shortage_qty)
    FROM old_rows o
    WHERE o.kind = 'inventory' AND o.product_id IS NOT NULL
      AND (SELECT s.status FROM sales s WHERE s.id = o.sale_id) = 'posted'
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

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
                 sum(x.shortage) AS shortage
          FROM (SELECT o.sale_id, o.tenant_id, coalesce(o.txn_date, '-infinity'::date) AS day, o.product_id,
                       -1 AS lines, -(CASE WHEN o.sale_type <> 'credit_memo' THEN o.quantity ELSE 0 END) AS sold,
                       -(CASE WHEN o.sale_type = 'credit_memo' THEN o.quantity ELSE 0 END) AS returned,
                       -o.revenue AS revenue, -o.cost AS cost, -o.shortage_qty AS shortage
                FROM old_rows o WHERE o.kind = 'inventory' AND o.product_id IS NOT NULL
                UNION ALL
                SELECT n.sale_id, n.tenant_id, coalesce(n.txn_date, '-infinity'::date), n.product_id, 1,
                       CASE WHEN n.sale_type <> 'credit_memo' THEN n.quantity ELSE 0 END,
                       CASE WHEN n.sale_type = 'credit_memo' THEN n.quantity ELSE 0 END,
                       n.revenue, n.cost, n.shortage_qty
                FROM new_rows n WHERE n.kind = 'inventory' AND n.product_id IS NOT NULL) x
          GROUP BY 1, 2, 3, 4
          HAVING sum(x.lines) <> 0 OR sum(x.sold) <> 0 OR sum(x.returned) <> 0 OR sum(x.revenue) <> 0
              OR sum(x.cost) <> 0 OR sum(x.shortage) <> 0) d
    WHERE (SELECT s.status FROM sales s WHERE s.id = d.sale_id) = 'posted'
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS query_sales_inserted ON sales;
CREATE TRIGGER query_sales_inserted AFTER INSERT ON sales REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_sales_inserted();
DROP TRIGGER IF EXISTS query_sales_updated ON sales;
CREATE TRIGGER query_sales_updated AFTER UPDATE ON sales REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_sales_updated();
DROP TRIGGER IF EXISTS query_sales_deleted ON sales;
CREATE TRIGGER query_sales_deleted AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_sales_deleted();
DROP TRIGGER IF EXISTS query_sale_deleting ON sales;
CREATE TRIGGER query_sale_deleting BEFORE DELETE ON sales FOR EACH ROW EXECUTE FUNCTION query_sale_deleting();
DROP TRIGGER IF EXISTS query_lines_inserted ON sale_lines;
CREATE TRIGGER query_lines_inserted AFTER INSERT ON sale_lines REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_lines_inserted();
DROP TRIGGER IF EXISTS query_lines_updated ON sale_lines;
CREATE TRIGGER query_lines_updated AFTER UPDATE ON sale_lines REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_lines_updated();
DROP TRIGGER IF EXISTS query_lines_deleted ON sale_lines;
CREATE TRIGGER query_lines_deleted AFTER DELETE ON sale_lines REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_lines_deleted();

-- Existing data, counted once (the triggers above and this backfill run in the migration's
-- transaction, which holds off concurrent writers of sales and sale_lines).
LOCK TABLE sales, sale_lines IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM sales_totals;
DELETE FROM sales_totals_delta;
INSERT INTO sales_totals (tenant_id, day, status, type, source, has_shortage, sales, revenue, cost)
SELECT tenant_id, coalesce(txn_date, '-infinity'::date), status, type, source, has_shortage,
       count(*), sum(revenue), sum(cost)
FROM sales GROUP BY 1, 2, 3, 4, 5, 6;
DELETE FROM product_totals;
DELETE FROM product_totals_delta;
INSERT INTO product_totals (tenant_id, day, product_id, lines, quantity_sold, quantity_returned, revenue, cost,
                            shortage_qty)
SELECT l.tenant_id, coalesce(l.txn_date, '-infinity'::date), l.product_id, count(*),
       sum(CASE WHEN l.sale_type <> 'credit_memo' THEN l.quantity ELSE 0 END),
       sum(CASE WHEN l.sale_type = 'credit_memo' THEN l.quantity ELSE 0 END),
       sum(l.revenue), sum(l.cost), sum(l.shortage_qty)
FROM sale_lines l JOIN sales s ON s.id = l.sale_id
WHERE l.kind = 'inventory' AND l.product_id IS NOT NULL AND s.status = 'posted'
GROUP BY 1, 2, 3;
