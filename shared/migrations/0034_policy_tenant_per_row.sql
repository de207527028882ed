-- Row-level security compares each row with app_current_tenant() again, as 0017 wrote it.
--
-- 0032_policy_tenant_once.sql wrote the policies as (SELECT app_current_tenant()), an
-- initplan, so that a statement touching ten thousand rows reads the tenant setting once.
-- It made the bench's backdated re-cost 5-13 % faster, and in-order costing about a
-- quarter slower: one costing consumer on 3,000 two-line sales ran 1,198-1,335 sales/s with
-- the initplan form against 1,731-1,789 with this one (2026-12-07, 2-core Intel Xeon, runs
-- side by side). The statements themselves took the same time (auto_explain); forcing
-- generic plans made both forms equal. So the price is in planning, not in execution: the
-- costing engine plans every statement for its parameters (plan_cache_mode =
-- force_custom_plan, services/costing/repository), and each policy's subquery is planned
-- again for every table a statement touches, in the many small statements of in-order
-- costing too.
-- In-order sales are what a tenant's sync sends all day; a long backdate is rare. The
-- policies admit the same rows in both forms.
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
            ALTER POLICY tenant_isolation ON tenants USING (id = app_current_tenant())
                WITH CHECK (id = app_current_tenant());
        ELSIF t.relname = 'dead_letters' THEN
            ALTER POLICY tenant_isolation ON dead_letters USING (tenant_id = app_current_tenant())
                WITH CHECK (tenant_id IS NULL OR tenant_id = app_current_tenant());
        ELSE
            EXECUTE format('ALTER POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())
                            WITH CHECK (tenant_id = app_current_tenant())', t.relname);
        END IF;
    END LOOP;
END $$;
