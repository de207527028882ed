-- Lines, versions and cost revisions reference their sale by its primary key.
--
-- The composite keys (tenant_id, sale_id) -> sales (tenant_id, id) made every
-- foreign-key check a lookup PostgreSQL plans once per connection (a generic plan)
-- — and while the sales table is small, several of the query service's
-- (tenant_id, ..., id) indexes look as cheap as the unique one, so the check could
-- be planned on sales_q_customer_date and then scan the whole tenant for every
-- line written: costing slowed down with every sale (100 sales per transaction went
-- from 60 ms to 1.3 s over 6,000 sales). A check by primary key has one plan.
-- The tenant of a line is its sale's tenant: the costing engine writes both from one
-- tenant-bound repository.
ALTER TABLE sale_lines DROP CONSTRAINT IF EXISTS sale_lines_tenant_id_sale_id_fkey;
ALTER TABLE sale_versions DROP CONSTRAINT IF EXISTS sale_versions_tenant_id_sale_id_fkey;
ALTER TABLE cost_revisions DROP CONSTRAINT IF EXISTS cost_revisions_tenant_id_sale_id_fkey;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'sale_lines_sale_id_fkey') THEN
        ALTER TABLE sale_lines ADD CONSTRAINT sale_lines_sale_id_fkey
            FOREIGN KEY (sale_id) REFERENCES sales (id) ON DELETE CASCADE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'sale_versions_sale_id_fkey') THEN
        ALTER TABLE sale_versions ADD CONSTRAINT sale_versions_sale_id_fkey
            FOREIGN KEY (sale_id) REFERENCES sales (id) ON DELETE CASCADE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'cost_revisions_sale_id_fkey') THEN
        ALTER TABLE cost_revisions ADD CONSTRAINT cost_revisions_sale_id_fkey
            FOREIGN KEY (sale_id) REFERENCES sales (id) ON DELETE CASCADE;
    END IF;
END $$;
