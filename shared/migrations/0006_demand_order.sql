-- Demand order compares external ids length first, then as text, so numeric ids
-- (QuickBooks') sort numerically: invoice "101" comes before "1000". Within one
-- date and creation second QuickBooks ids rise with creation, so a burst is costed
-- as appends instead of each sale re-costing the ones "after" it.
ALTER TABLE sale_lines ADD COLUMN IF NOT EXISTS external_id_len int GENERATED ALWAYS AS (length(external_id)) STORED;
DROP INDEX IF EXISTS sale_lines_demand_order;
CREATE INDEX IF NOT EXISTS sale_lines_demand_order_v2 ON sale_lines
    (product_id, txn_date, source_created_at, source, external_id_len, external_id, sale_type, line_no) WHERE in_demand;
