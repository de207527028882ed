-- sales kept UNIQUE (tenant_id, id) only as the target of composite foreign keys
-- (sale_lines, sale_versions -> sales). 0009 and 0015 dropped the last of those, and
-- the primary key finds a sale by id. Every new sale still wrote an entry in its index:
-- one of the sales table's ten, for nothing.
ALTER TABLE sales DROP CONSTRAINT IF EXISTS sales_tenant_id_id_key;
