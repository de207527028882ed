-- The sort keys of a re-costed sale are folded by the query service, not rewritten by
-- the costing transaction.
--
-- A sale backdated before ten thousand lines re-costs ten thousand sales, and moving
-- each of their sale_cost_keys rows through its four indexes (0012_sale_cost_keys.sql)
-- was the largest single part of that transaction. Now the update of a sale's revenue or
-- cost only appends the sale to sale_cost_keys_stale; the query service's folder
-- (services/query/rollups.py) copies the sales' current revenue and cost into their keys
-- and removes them from sale_cost_keys_stale, in one statement.
--
-- Invariant: a sale that is not in sale_cost_keys_stale has keys equal to its revenue
-- and cost (new sales get their keys from the insert trigger of 0012). The sales list
-- sorted by cost, margin or margin % reads the keys of the other sales through their
-- indexes and the stale ones from the sales themselves, merged in one statement
-- (services/query/views.py), so it is exact whatever has been folded.
CREATE TABLE IF NOT EXISTS sale_cost_keys_stale (
    tenant_id uuid   NOT NULL,
    sale_id   bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS sale_cost_keys_stale_sale ON sale_cost_keys_stale (tenant_id, sale_id);

-- Every updated sale is marked, whatever changed: comparing old and new rows would be a
-- join of the two transition tables, which a plan cached for a few rows makes quadratic
-- for a backdate's thousands. The folder skips keys that are already right.
CREATE OR REPLACE FUNCTION sale_cost_keys_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sale_cost_keys_stale (tenant_id, sale_id) SELECT n.tenant_id, n.id FROM new_rows n;
    RETURN NULL;
END $$;
