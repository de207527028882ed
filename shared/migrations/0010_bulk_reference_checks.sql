-- References of the costing engine's bulk tables, checked once per statement.
--
-- A foreign key checks each inserted row on its own: a lookup of the referenced row
-- that also locks it (FOR KEY SHARE). Re-costing a backdated sale inserts an
-- allocation and a cost revision for each of thousands of later lines, and those
-- checks were two thirds of the cost of the inserts. These statement-level triggers
-- keep what the constraints gave us (every allocation names a line and a lot of its
-- tenant, every cost revision a sale of its tenant; deleting a line, lot or sale
-- deletes what refers to it) with one check per statement. The referenced rows are
-- not locked: the costing engine writes and deletes them under the product's row
-- lock, and it is the only writer of these tables.
ALTER TABLE allocations DROP CONSTRAINT IF EXISTS allocations_line_id_fkey;
ALTER TABLE allocations DROP CONSTRAINT IF EXISTS allocations_tenant_id_lot_id_fkey;
ALTER TABLE cost_revisions DROP CONSTRAINT IF EXISTS cost_revisions_sale_id_fkey;

CREATE OR REPLACE FUNCTION allocations_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    -- Scalar subqueries: one primary-key probe per row, whatever plan is cached.
    SELECT n.line_id, n.lot_id INTO bad FROM new_rows n
    WHERE (SELECT l.tenant_id FROM sale_lines l WHERE l.id = n.line_id) IS DISTINCT FROM n.tenant_id
       OR (SELECT lot.tenant_id FROM lots lot WHERE lot.id = n.lot_id) IS DISTINCT FROM n.tenant_id
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format(
            'allocation (line %s, lot %s) names no line or lot of its tenant', bad.line_id, bad.lot_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION cost_revisions_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT n.sale_id INTO bad FROM new_rows n
    WHERE (SELECT s.tenant_id FROM sales s WHERE s.id = n.sale_id) IS DISTINCT FROM n.tenant_id
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format('cost revision names sale %s, not one of its tenant', bad);
    END IF;
    RETURN NULL;
END $$;

-- Deleting rows deletes what refers to them: the trigger's arguments name the
-- referring table and its column holding the deleted rows' ids.
CREATE OR REPLACE FUNCTION delete_referring_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %I WHERE %I = ANY ($1)', TG_ARGV[0], TG_ARGV[1])
        USING ARRAY(SELECT o.id FROM old_rows o);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS allocations_check_references ON allocations;
CREATE TRIGGER allocations_check_references AFTER INSERT ON allocations REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION allocations_check_references();
DROP TRIGGER IF EXISTS cost_revisions_check_references ON cost_revisions;
CREATE TRIGGER cost_revisions_check_references AFTER INSERT ON cost_revisions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cost_revisions_check_references();
DROP TRIGGER IF EXISTS allocations_follow_lines ON sale_lines;
CREATE TRIGGER allocations_follow_lines AFTER DELETE ON sale_lines REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_referring_rows('allocations', 'line_id');
DROP TRIGGER IF EXISTS allocations_follow_lots ON lots;
CREATE TRIGGER allocations_follow_lots AFTER DELETE ON lots REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_referring_rows('allocations', 'lot_id');
DROP TRIGGER IF EXISTS cost_revisions_follow_sales ON sales;
CREATE TRIGGER cost_revisions_follow_sales AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_referring_rows('cost_revisions', 'sale_id');
