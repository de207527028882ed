-- The sort-key rows of the updated sales are found by primary key.
--
-- sale_cost_keys_updated (0012_sale_cost_keys.sql) joined the statement's new rows to
-- sale_cost_keys with nothing to probe by, and for a few thousand sales PostgreSQL
-- chose to hash the whole table: every tenant's sales, read for each sale backdated
-- before that many lines. The ids of the new rows now bound the scan to their keys.
CREATE OR REPLACE FUNCTION sale_cost_keys_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Planned for each statement's number of rows (EXECUTE): a plan cached for one
    -- sale would probe a backdate's thousands one by one, and one cached for
    -- thousands would scan the table for a single sale.
    EXECUTE 'UPDATE sale_cost_keys k SET revenue = n.revenue, cost = n.cost
             FROM new_rows n
             WHERE k.sale_id = n.id AND k.sale_id = ANY (ARRAY(SELECT m.id FROM new_rows m))
               AND (k.revenue, k.cost) IS DISTINCT FROM (n.revenue, n.cost)';
    RETURN NULL;
END $$;
