-- References of sale lines and sale versions, checked once per statement, as
-- 0010_bulk_reference_checks.sql does for allocations and cost revisions.
--
-- A foreign key checks each inserted row on its own, and checks again every row that
-- the transaction which inserted it updates, whether its keys changed or not. A sale
-- costed in order inserts its lines and then writes their costs: each line was looked
-- up four times (its sale and its product, twice), about a quarter of the database
-- time of a group of in-order sales. These triggers keep what the constraints gave
-- us: every line names a sale and (if any) a product of its tenant, every version a
-- sale of its tenant; deleting a sale deletes its lines and versions; a product that
-- lines name cannot be deleted. The referenced rows are not locked: the costing
-- engine writes lines under the row locks of their products and sales, and it is the
-- only writer of these tables.
ALTER TABLE sale_lines DROP CONSTRAINT IF EXISTS sale_lines_sale_id_fkey;
ALTER TABLE sale_lines DROP CONSTRAINT IF EXISTS sale_lines_tenant_id_product_id_fkey;
ALTER TABLE sale_versions DROP CONSTRAINT IF EXISTS sale_versions_sale_id_fkey;

CREATE OR REPLACE FUNCTION sale_lines_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    -- Scalar subqueries: one primary-key probe per row, whatever plan is cached.
    SELECT n.sale_id, n.product_id INTO bad FROM new_rows n
    WHERE (SELECT s.tenant_id FROM sales s WHERE s.id = n.sale_id) IS DISTINCT FROM n.tenant_id
       OR (n.product_id IS NOT NULL
           AND (SELECT p.tenant_id FROM products p WHERE p.id = n.product_id) IS DISTINCT FROM n.tenant_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format(
            'sale line (sale %s, product %s) names no sale or product of its tenant', bad.sale_id, bad.product_id);
    END IF;
    RETURN NULL;
END $$;

-- An update that changes a line's keys (an edit naming another product): that row alone.
CREATE OR REPLACE FUNCTION sale_line_check_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT s.tenant_id FROM sales s WHERE s.id = NEW.sale_id) IS DISTINCT FROM NEW.tenant_id
       OR (NEW.product_id IS NOT NULL
           AND (SELECT p.tenant_id FROM products p WHERE p.id = NEW.product_id) IS DISTINCT FROM NEW.tenant_id) THEN
        RAISE foreign_key_violation USING MESSAGE = format(
            'sale line (sale %s, product %s) names no sale or product of its tenant', NEW.sale_id, NEW.product_id);
    END IF;
    RETURN NULL;
END $$;

-- New rows' sale_id names a sale of their tenant: cost revisions (replacing 0010's function of
-- their own) and sale versions; the trigger's argument names the row in the message.
CREATE OR REPLACE FUNCTION check_sale_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT n.sale_id INTO bad FROM new_rows n
    WHERE (SELECT s.tenant_id FROM sales s WHERE s.id = n.sale_id) IS DISTINCT FROM n.tenant_id
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format('%s names sale %s, not one of its tenant', TG_ARGV[0], bad);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION products_check_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT o.id INTO bad FROM old_rows o WHERE EXISTS (SELECT 1 FROM sale_lines l WHERE l.product_id = o.id) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format('product %s is still named by sale lines', bad);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS sale_lines_check_references ON sale_lines;
CREATE TRIGGER sale_lines_check_references AFTER INSERT ON sale_lines REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sale_lines_check_references();
DROP TRIGGER IF EXISTS sale_line_check_keys ON sale_lines;
CREATE TRIGGER sale_line_check_keys AFTER UPDATE OF tenant_id, sale_id, product_id ON sale_lines FOR EACH ROW
    WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.sale_id IS DISTINCT FROM NEW.sale_id
          OR OLD.product_id IS DISTINCT FROM NEW.product_id)
    EXECUTE FUNCTION sale_line_check_keys();
DROP TRIGGER IF EXISTS sale_versions_check_references ON sale_versions;
CREATE TRIGGER sale_versions_check_references AFTER INSERT ON sale_versions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION check_sale_references('sale version');
DROP TRIGGER IF EXISTS cost_revisions_check_references ON cost_revisions;
CREATE TRIGGER cost_revisions_check_references AFTER INSERT ON cost_revisions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION check_sale_references('cost revision');
DROP FUNCTION IF EXISTS cost_revisions_check_references();
DROP TRIGGER IF EXISTS products_check_unreferenced ON products;
CREATE TRIGGER products_check_unreferenced AFTER DELETE ON products REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_check_unreferenced();
-- Named to fire before the query service's statement triggers on sales (triggers of
-- one event fire in name order), as the constraint's cascade did.
DROP TRIGGER IF EXISTS lines_follow_sales ON sales;
CREATE TRIGGER lines_follow_sales AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_referring_rows('sale_lines', 'sale_id');
DROP TRIGGER IF EXISTS versions_follow_sales ON sales;
CREATE TRIGGER versions_follow_sales AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_referring_rows('sale_versions', 'sale_id');
