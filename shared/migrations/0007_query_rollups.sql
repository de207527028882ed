-- Query service: coarser and keyed rollups, so that the list summary and the product
-- margins read tens of rows, not thousands (services/query/summaries.py reads them,
-- services/query/rollups.py folds into them). Nothing of 0003_query.sql changes: its
-- triggers keep appending to sales_totals_delta and product_totals_delta, and the
-- folder now moves each batch of those deltas into every grain in one transaction.
--
-- * sales_totals_month / sales_totals_all: sales_totals summed per month (month =
--   first day, -infinity for sales without a date) and over all time. Invariant: each
--   equals sales_totals (base, without the unfolded deltas) summed to its grain.
-- * product_totals_month: product_totals summed per month, same invariant.
-- * customer_totals (+ customer_totals_delta): per tenant, customer and the sale
--   dimensions (status, type, source, has_shortage): Σ over the sales with that
--   customer of (1, revenue, cost). Sales without a customer are not counted (no
--   customer substring matches them). customer_names: the distinct customers of
--   customer_totals (folded with it), so every customer a sale of the tenant has is
--   in customer_names or in customer_totals_delta.
-- * sku_totals (+ sku_totals_delta): per tenant, sku and the sale dimensions: Σ over
--   the sales that have at least one line with that sku of (1, revenue, cost): a sale
--   counts once per distinct sku of its lines, as the list's sku filter counts it.
--   sale_skus holds, per sale, the sorted distinct skus the rollup has counted it
--   under; after every statement on sale_lines it equals the sale's actual distinct
--   skus for every sale that statement touched (query_reconcile_sale_skus), so
--     Σ sku_totals(+delta) = Σ over sales S, sku k in sale_skus(S) of (1, revenue, cost)(S).
--   A statement on sales moves each changed sale's contribution (old dimensions and
--   amounts out, new in) under its recorded skus; a statement on sale_lines
--   reconciles the recorded skus of the sales it touched with their lines. Reconciling
--   is idempotent, so it stays exact when one statement fires several triggers (an
--   INSERT … ON CONFLICT DO UPDATE fires the INSERT and the UPDATE trigger, each
--   seeing the table after the whole statement).
--
-- Like product_totals, the keyed rollups read the sale (or its lines) from inside the
-- writing transaction: exact as long as whoever changes a sale's lines holds the sale's
-- row lock (the costing engine locks the sale before writing it or its lines). A line
-- counts under its sale's tenant only (l.tenant_id = s.tenant_id, as in the filter).
--
-- All triggers only append deltas (no shared totals row is updated by a costing
-- transaction); readers add base and unfolded deltas in one snapshot.

CREATE TABLE IF NOT EXISTS sales_totals_month (
    tenant_id    uuid NOT NULL,
    month        date NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL,
    PRIMARY KEY (tenant_id, month, status, type, source, has_shortage)
);

CREATE TABLE IF NOT EXISTS sales_totals_all (
    tenant_id    uuid NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL,
    PRIMARY KEY (tenant_id, status, type, source, has_shortage)
);

CREATE TABLE IF NOT EXISTS product_totals_month (
    tenant_id         uuid NOT NULL,
    month             date NOT NULL,
    product_id        bigint NOT NULL,
    lines             bigint NOT NULL,
    quantity_sold     numeric NOT NULL,
    quantity_returned numeric NOT NULL,
    revenue           numeric NOT NULL,
    cost              numeric NOT NULL,
    shortage_qty      numeric NOT NULL,
    PRIMARY KEY (tenant_id, month, product_id)
);

CREATE TABLE IF NOT EXISTS customer_totals (
    tenant_id    uuid NOT NULL,
    customer     text NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL,
    PRIMARY KEY (tenant_id, customer, status, type, source, has_shortage)
);

-- Every customer name customer_totals has, per tenant: a customer substring finds the
-- few matching names here (one row per name; trigrams for large tenants), then their
-- rows of customer_totals by its primary key.
CREATE TABLE IF NOT EXISTS customer_names (
    tenant_id uuid NOT NULL,
    customer  text NOT NULL,
    PRIMARY KEY (tenant_id, customer)
);
CREATE INDEX IF NOT EXISTS customer_names_trgm ON customer_names USING gin (customer gin_trgm_ops);

CREATE TABLE IF NOT EXISTS customer_totals_delta (
    id           bigserial PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    customer     text NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL
);
CREATE INDEX IF NOT EXISTS customer_totals_delta_tenant ON customer_totals_delta (tenant_id, customer);

CREATE TABLE IF NOT EXISTS sku_totals (
    tenant_id    uuid NOT NULL,
    sku          text NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL,
    PRIMARY KEY (tenant_id, sku, status, type, source, has_shortage)
);

CREATE TABLE IF NOT EXISTS sku_totals_delta (
    id           bigserial PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    sku          text NOT NULL,
    status       text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    has_shortage boolean NOT NULL,
    sales        bigint NOT NULL,
    revenue      numeric NOT NULL,
    cost         numeric NOT NULL
);
CREATE INDEX IF NOT EXISTS sku_totals_delta_tenant ON sku_totals_delta (tenant_id, sku);

CREATE TABLE IF NOT EXISTS sale_skus (
    sale_id bigint PRIMARY KEY,
    skus    text[] NOT NULL
);

-- The customer filter's page, newest first: the sales of each matching customer name
-- by date (services/query/views.py, CUSTOMER_PAGE).
CREATE INDEX IF NOT EXISTS sales_q_customer_date ON sales
    (tenant_id, customer, (coalesce(txn_date, '-infinity'::date)), id);

-- sale_lines -> sale_skus, sku_totals ------------------------------------------------------

CREATE OR REPLACE FUNCTION query_reconcile_sale_skus(sale_ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH current AS MATERIALIZED (
        SELECT s.id, s.tenant_id, s.status, s.type, s.source, s.has_shortage, s.revenue, s.cost,
               coalesce((SELECT r.skus FROM sale_skus r WHERE r.sale_id = s.id), '{}') AS recorded,
               -- the sale's lines by (sale_id, line_no) alone: a plan cached while
               -- sale_lines was small must not walk a tenant's whole sku index
               ARRAY(SELECT DISTINCT l.sku
                     FROM (SELECT l.sku, l.tenant_id FROM sale_lines l WHERE l.sale_id = s.id OFFSET 0) l
                     WHERE l.tenant_id = s.tenant_id AND l.sku IS NOT NULL
                     ORDER BY l.sku) AS actual
        FROM (SELECT DISTINCT u.id FROM unnest(sale_ids) u(id)) a
        CROSS JOIN LATERAL (SELECT * FROM sales s WHERE s.id = a.id OFFSET 0) s
    ), changed AS MATERIALIZED (
        SELECT * FROM current WHERE recorded <> actual
    ), deltas AS (
        INSERT INTO sku_totals_delta (tenant_id, sku, status, type, source, has_shortage, sales, revenue, cost)
        SELECT c.tenant_id, k.sku, c.status, c.type, c.source, c.has_shortage,
               sum(k.sign), sum(k.sign * c.revenue), sum(k.sign * c.cost)
        FROM changed c
        CROSS JOIN LATERAL (SELECT x.sku, 1 AS sign FROM unnest(c.actual) x(sku) WHERE x.sku <> ALL (c.recorded)
                            UNION ALL
                            SELECT x.sku, -1 FROM unnest(c.recorded) x(sku) WHERE x.sku <> ALL (c.actual)) k
        GROUP BY 1, 2, 3, 4, 5, 6
    )
    INSERT INTO sale_skus AS r (sale_id, skus)
    SELECT c.id, c.actual FROM changed c
    ON CONFLICT (sale_id) DO UPDATE SET skus = EXCLUDED.skus;
END $$;

CREATE OR REPLACE FUNCTION query_lines_skus_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM query_reconcile_sale_skus(ARRAY(SELECT DISTINCT n.sale_id FROM new_rows n WHERE n.sku IS NOT NULL));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION query_lines_skus_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM query_reconcile_sale_skus(ARRAY(SELECT DISTINCT o.sale_id FROM old_rows o WHERE o.sku IS NOT NULL));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION query_lines_skus_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only sales whose multiset of (tenant, sku) lines changed: re-laid lines cancel out.
    PERFORM query_reconcile_sale_skus(ARRAY(
        SELECT DISTINCT x.sale_id
        FROM (SELECT o.sale_id, o.tenant_id, o.sku, -1 AS n FROM old_rows o WHERE o.sku IS NOT NULL
              UNION ALL
              SELECT n.sale_id, n.tenant_id, n.sku, 1 FROM new_rows n WHERE n.sku IS NOT NULL) x
        GROUP BY x.sale_id, x.tenant_id, x.sku
        HAVING sum(x.n) <> 0));
    RETURN NULL;
END $$;

-- sales -> customer_totals, sku_totals ------------------------------------------------------

CREATE OR REPLACE FUNCTION query_sales_keys_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A new sale has no lines yet (they reference it), so no skus.
    INSERT INTO customer_totals_delta (tenant_id, customer, status, type, source, has_shortage, sales, revenue, cost)
    SELECT n.tenant_id, n.customer, n.status, n.type, n.source, n.has_shortage, count(*), sum(n.revenue), sum(n.cost)
    FROM new_rows n
    WHERE n.customer IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION query_sales_keys_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Per sale, old values count negatively and new ones positively: unchanged sales
    -- (and unchanged columns) cancel out before any lookup.
    WITH d AS MATERIALIZED (
        SELECT x.id, x.tenant_id, x.customer, x.status, x.type, x.source, x.has_shortage,
               sum(x.sales) AS sales, sum(x.revenue) AS revenue, sum(x.cost) AS cost
        FROM (SELECT o.id, o.tenant_id, o.customer, o.status, o.type, o.source, o.has_shortage,
                     -1 AS sales, -o.revenue AS revenue, -o.cost AS cost
              FROM old_rows o
              UNION ALL
              SELECT n.id, n.tenant_id, n.customer, n.status, n.type, n.source, n.has_shortage, 1, n.revenue, n.cost
              FROM new_rows n) x
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        HAVING sum(x.sales) <> 0 OR sum(x.revenue) <> 0 OR sum(x.cost) <> 0
    ), customers AS (
        INSERT INTO customer_totals_delta (tenant_id, customer, status, type, source, has_shortage, sales, revenue,
                                           cost)
        SELECT d.tenant_id, d.customer, d.status, d.type, d.source, d.has_shortage, sum(d.sales), sum(d.revenue),
               sum(d.cost)
        FROM d
        WHERE d.customer IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(d.sales) <> 0 OR sum(d.revenue) <> 0 OR sum(d.cost) <> 0
    )
    INSERT INTO sku_totals_delta (tenant_id, sku, status, type, source, has_shortage, sales, revenue, cost)
    SELECT d.tenant_id, k.sku, d.status, d.type, d.source, d.has_shortage, sum(d.sales), sum(d.revenue), sum(d.cost)
    FROM d
    CROSS JOIN LATERAL (SELECT r.skus FROM sale_skus r WHERE r.sale_id = d.id OFFSET 0) r
    CROSS JOIN LATERAL unnest(r.skus) k(sku)
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(d.sales) <> 0 OR sum(d.revenue) <> 0 OR sum(d.cost) <> 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION query_sales_keys_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Whether the lines of a deleted sale go before it or by cascade after it, their
    -- reconciliation finds no sale and does nothing: the sale's recorded skus stop
    -- counting here.
    WITH customers AS (
        INSERT INTO customer_totals_delta (tenant_id, customer, status, type, source, has_shortage, sales, revenue,
                                           cost)
        SELECT o.tenant_id, o.customer, o.status, o.type, o.source, o.has_shortage, -count(*), -sum(o.revenue),
               -sum(o.cost)
        FROM old_rows o
        WHERE o.customer IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6
    ), skus AS (
        INSERT INTO sku_totals_delta (tenant_id, sku, status, type, source, has_shortage, sales, revenue, cost)
        SELECT o.tenant_id, k.sku, o.status, o.type, o.source, o.has_shortage, -count(*), -sum(o.revenue),
               -sum(o.cost)
        FROM old_rows o
        CROSS JOIN LATERAL (SELECT r.skus FROM sale_skus r WHERE r.sale_id = o.id OFFSET 0) r
        CROSS JOIN LATERAL unnest(r.skus) k(sku)
        GROUP BY 1, 2, 3, 4, 5, 6
    )
    DELETE FROM sale_skus r WHERE r.sale_id = ANY (ARRAY(SELECT o.id FROM old_rows o));  -- by primary key
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS query_sales_keys_inserted ON sales;
CREATE TRIGGER query_sales_keys_inserted AFTER INSERT ON sales REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_sales_keys_inserted();
DROP TRIGGER IF EXISTS query_sales_keys_updated ON sales;
CREATE TRIGGER query_sales_keys_updated AFTER UPDATE ON sales REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_sales_keys_updated();
DROP TRIGGER IF EXISTS query_sales_keys_deleted ON sales;
CREATE TRIGGER query_sales_keys_deleted AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_sales_keys_deleted();
DROP TRIGGER IF EXISTS query_lines_skus_inserted ON sale_lines;
CREATE TRIGGER query_lines_skus_inserted AFTER INSERT ON sale_lines REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_lines_skus_inserted();
DROP TRIGGER IF EXISTS query_lines_skus_updated ON sale_lines;
CREATE TRIGGER query_lines_skus_updated AFTER UPDATE ON sale_lines REFERENCING OLD TABLE AS old_rows
    NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION query_lines_skus_updated();
DROP TRIGGER IF EXISTS query_lines_skus_deleted ON sale_lines;
CREATE TRIGGER query_lines_skus_deleted AFTER DELETE ON sale_lines REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION query_lines_skus_deleted();

-- Existing data, counted once. The writers of sales and sale_lines wait for this
-- transaction, and so does the folder (it writes sales_totals and product_totals): the
-- coarser grains are summed from the base tables, whose unfolded deltas the folder will
-- add to every grain alike; the keyed rollups are counted from the sales themselves.
LOCK TABLE sales, sale_lines, sales_totals, product_totals IN SHARE ROW EXCLUSIVE MODE;

DELETE FROM sales_totals_month;
INSERT INTO sales_totals_month (tenant_id, month, status, type, source, has_shortage, sales, revenue, cost)
SELECT tenant_id, date_trunc('month', day::timestamp)::date, status, type, source, has_shortage,
       sum(sales), sum(revenue), sum(cost)
FROM sales_totals GROUP BY 1, 2, 3, 4, 5, 6;

DELETE FROM sales_totals_all;
INSERT INTO sales_totals_all (tenant_id, status, type, source, has_shortage, sales, revenue, cost)
SELECT tenant_id, status, type, source, has_shortage, sum(sales), sum(revenue), sum(cost)
FROM sales_totals GROUP BY 1, 2, 3, 4, 5;

DELETE FROM product_totals_month;
INSERT INTO product_totals_month (tenant_id, month, product_id, lines, quantity_sold, quantity_returned, revenue,
                                  cost, shortage_qty)
SELECT tenant_id, date_trunc('month', day::timestamp)::date, product_id, sum(lines), sum(quantity_sold),
       sum(quantity_returned), sum(revenue), sum(cost), sum(shortage_qty)
FROM product_totals GROUP BY 1, 2, 3;

DELETE FROM customer_totals;
DELETE FROM customer_totals_delta;
INSERT INTO customer_totals (tenant_id, customer, status, type, source, has_shortage, sales, revenue, cost)
SELECT tenant_id, customer, status, type, source, has_shortage, count(*), sum(revenue), sum(cost)
FROM sales WHERE customer IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6;

DELETE FROM customer_names;
INSERT INTO customer_names (tenant_id, customer) SELECT DISTINCT tenant_id, customer FROM customer_totals;

DELETE FROM sale_skus;
INSERT INTO sale_skus (sale_id, skus)
SELECT l.sale_id, array_agg(DISTINCT l.sku ORDER BY l.sku)
FROM sale_lines l JOIN sales s ON s.id = l.sale_id AND s.tenant_id = l.tenant_id
WHERE l.sku IS NOT NULL
GROUP BY l.sale_id;

DELETE FROM sku_totals;
DELETE FROM sku_totals_delta;
INSERT INTO sku_totals (tenant_id, sku, status, type, source, has_shortage, sales, revenue, cost)
SELECT s.tenant_id, k.sku, s.status, s.type, s.source, s.has_shortage, count(*), sum(s.revenue), sum(s.cost)
FROM sale_skus r JOIN sales s ON s.id = r.sale_id CROSS JOIN LATERAL unnest(r.skus) k(sku)
GROUP BY 1, 2, 3, 4, 5, 6;
