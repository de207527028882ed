-- A rebuild first deletes a tenant's whole costing state (services/costing/repository/
-- sql_totals.py RESET_TENANT). Row by row, the query rollups' delete triggers would undo
-- each deleted sale and line in the rollups: measured on 1,000,000 sales, 75 of the
-- reset's 93 s went to them (the sale-skus reconciliation alone 36 s, the per-row
-- BEFORE DELETE trigger on sales 14 s), only to reach zero. The reset deletes the
-- tenant's rollup rows itself instead, after naming the tenant in the transaction-local
-- setting app.tenant_reset: these triggers do nothing while it names the tenant the
-- transaction is scoped to (app.tenant_id), and the reset clears it before it ends.
-- The integrity triggers (the cascades of delete_referring_rows, products_check_unreferenced)
-- still run.

CREATE OR REPLACE FUNCTION tenant_reset_in_progress() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('app.tenant_reset', true), '') <> ''
       AND current_setting('app.tenant_reset', true) = current_setting('app.tenant_id', true)
$$;

DROP TRIGGER IF EXISTS query_sale_deleting ON sales;
CREATE TRIGGER query_sale_deleting BEFORE DELETE ON sales FOR EACH ROW
    WHEN (NOT tenant_reset_in_progress()) EXECUTE FUNCTION query_sale_deleting();
DROP TRIGGER IF EXISTS query_sales_deleted ON sales;
CREATE TRIGGER query_sales_deleted AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT WHEN (NOT tenant_reset_in_progress()) EXECUTE FUNCTION query_sales_deleted();
DROP TRIGGER IF EXISTS query_sales_keys_deleted ON sales;
CREATE TRIGGER query_sales_keys_deleted AFTER DELETE ON sales REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT WHEN (NOT tenant_reset_in_progress()) EXECUTE FUNCTION query_sales_keys_deleted();
DROP TRIGGER IF EXISTS query_lines_deleted ON sale_lines;
CREATE TRIGGER query_lines_deleted AFTER DELETE ON sale_lines REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT WHEN (NOT tenant_reset_in_progress()) EXECUTE FUNCTION query_lines_deleted();
DROP TRIGGER IF EXISTS query_lines_skus_deleted ON sale_lines;
CREATE TRIGGER query_lines_skus_deleted AFTER DELETE ON sale_lines REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT WHEN (NOT tenant_reset_in_progress()) EXECUTE FUNCTION query_lines_skus_deleted();
