-- The sales list's sort keys that follow a sale's cost (cost, margin, margin %) live in
-- a narrow table beside the sales, kept by triggers on sales.
--
-- With those three indexes on sales, every re-costed sale was an update that could not
-- be heap-only: it wrote a new entry in each of the twelve indexes of sales. A sale
-- backdated before thousands of later lines re-costs thousands of sales, and that was
-- the largest part of its cost. Now the sales row takes a heap-only update and the
-- narrow row carries the index writes. A backdate re-costs every sale on a page, so a
-- page keeps room for a second version of each of its rows (fillfactor 50; this
-- applies to pages written from now on). The list sorted by cost, margin or margin %
-- walks these indexes and joins the sale (services/query/views.py).
CREATE TABLE IF NOT EXISTS sale_cost_keys (
    sale_id   bigint PRIMARY KEY,
    tenant_id uuid NOT NULL,
    revenue   numeric NOT NULL,
    cost      numeric NOT NULL
);
INSERT INTO sale_cost_keys (sale_id, tenant_id, revenue, cost)
SELECT id, tenant_id, revenue, cost FROM sales
ON CONFLICT (sale_id) DO NOTHING;
CREATE INDEX IF NOT EXISTS sale_cost_keys_cost ON sale_cost_keys (tenant_id, cost, sale_id);
CREATE INDEX IF NOT EXISTS sale_cost_keys_margin ON sale_cost_keys (tenant_id, (revenue - cost), sale_id);
-- margin % where revenue <> 0; a sale without revenue sorts as -Infinity (lowest).
CREATE INDEX IF NOT EXISTS sale_cost_keys_margin_pct ON sale_cost_keys
    (tenant_id, (coalesce(CASE WHEN revenue <> 0 THEN (revenue - cost) * 100 / revenue END, '-Infinity'::numeric)),
     sale_id);
DROP INDEX IF EXISTS sales_q_cost;
DROP INDEX IF EXISTS sales_q_margin;
DROP INDEX IF EXISTS sales_q_margin_pct;
ALTER TABLE sales SET (fillfactor = 50);

CREATE OR REPLACE FUNCTION sale_cost_keys_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sale_cost_keys (sale_id, tenant_id, revenue, cost)
    SELECT n.id, n.tenant_id, n.revenue, n.cost FROM new_rows n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION sale_cost_keys_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Planned for each statement's number of rows (EXECUTE): a plan cached for one
    -- sale would probe a backdate's thousands one by one, and one cached for
    -- thousands would scan the table for a single sale.
    EXECUTE 'UPDATE sale_cost_keys k SET revenue = n.revenue, cost = n.cost
             FROM new_rows n
             WHERE k.sale_id = n.id AND (k.revenue, k.cost) IS DISTINCT FROM (n.revenue, n.cost)';
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS sale_cost_keys_inserted ON sales;
CREATE TRIGGER sale_cost_keys_inserted AFTER INSERT ON sales REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sale_cost_keys_inserted();
DROP TRIGGER IF EXISTS sale_cost_keys_updated ON sales;
CREATE TRIGGER sale_cost_keys_updated AFTER UPDATE ON sales REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sale_cost_keys_updated();
DROP TRIGGER IF EXISTS sale_cost_keys_deleted ON sales;
CREATE TRIGGER sale_cost_keys_deleted AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_referring_rows('sale_cost_keys', 'sale_id');
