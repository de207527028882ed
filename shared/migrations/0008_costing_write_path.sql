-- The costing engine's write path (services/costing): fewer index writes per line.
--
-- * sale_lines_demand_end indexed the FIFO positions, which change on every re-lay:
--   each position update had to write every index of sale_lines. The tail is now
--   found through the demand order (FIRST_LINE_ENDING_AFTER in
--   services/costing/repository.py), so position and cost updates can be heap-only
--   tuples, given room on the page: fillfactor 85 leaves it.
-- * sale_lines_sku (tenant_id, sku) is a prefix of sale_lines_q_sku (tenant_id, sku, sale_id).
DROP INDEX IF EXISTS sale_lines_demand_end;
DROP INDEX IF EXISTS sale_lines_sku;
ALTER TABLE sale_lines SET (fillfactor = 85);
ALTER TABLE allocations SET (fillfactor = 85);
