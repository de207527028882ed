-- Row-level security reads the transaction's tenant once per statement, not once per row.
--
-- The policies of 0017 (and of the tables created since) compare every row with
-- app_current_tenant(), which PostgreSQL evaluates for each row a statement reads or
-- writes: a lookup of the app.tenant_id setting and a parse of its text as a uuid. A sale
-- backdated before ten thousand later lines reads and writes about a hundred thousand
-- rows under these policies (lines, allocations, revisions, sales, the rollup deltas its
-- triggers append); measured on the bench's floor of that re-cost, the policies cost
-- about 30 ms of 380 (bench/RESULTS.md).
--
-- Written as a scalar subquery, (SELECT app_current_tenant()), the same expression is an
-- initplan: evaluated once when the statement first needs it, then compared as a
-- constant (and usable as an index condition). What the policies admit is unchanged: the
-- setting is transaction-local and no statement changes it while it runs.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = 'tenant_isolation'
        WHERE c.relkind IN ('r', 'p')
    LOOP
        IF t.relname = 'tenants' THEN
            ALTER POLICY tenant_isolation ON tenants USING (id = (SELECT app_current_tenant()))
                WITH CHECK (id = (SELECT app_current_tenant()));
        ELSIF t.relname = 'dead_letters' THEN
            ALTER POLICY tenant_isolation ON dead_letters USING (tenant_id = (SELECT app_current_tenant()))
                WITH CHECK (tenant_id IS NULL OR tenant_id = (SELECT app_current_tenant()));
        ELSE
            EXECUTE format('ALTER POLICY tenant_isolation ON %I USING (tenant_id = (SELECT app_current_tenant()))
                            WITH CHECK (tenant_id = (SELECT app_current_tenant()))', t.relname);
        END IF;
    END LOOP;
END $$;
