-- When each shortage was first recorded and when it was resolved (issue 18, GET /api/v1/shortages).
--
-- One row per period a sale line is short (in demand with shortage_qty > 0): opened when it
-- becomes short, resolved_at set when it no longer is (a lot arrived, the sale was voided,
-- deleted or edited, the line went). quantity_short and shortage_cost follow the line while
-- open and keep their last values once resolved. Kept by statement-level triggers on
-- sale_lines (the transition tables, like the rollup triggers of 0003/0007), so they are
-- written in the costing transaction itself, whatever statement changed the lines.
CREATE TABLE IF NOT EXISTS shortage_records (
    id             bigserial PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    sale_id        bigint NOT NULL,
    line_no        int NOT NULL,
    product_id     bigint,
    sku            text,
    quantity_short numeric NOT NULL,
    shortage_cost  numeric NOT NULL,
    opened_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS shortage_records_open ON shortage_records (sale_id, line_no)
    WHERE resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS shortage_records_since ON shortage_records (tenant_id, opened_at, id);
CREATE INDEX IF NOT EXISTS shortage_records_resolved ON shortage_records (tenant_id, opened_at, id)
    WHERE resolved_at IS NOT NULL;

ALTER TABLE shortage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE shortage_records FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON shortage_records;
CREATE POLICY tenant_isolation ON shortage_records USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- One function per operation: a statement naming a transition table the trigger lacks
-- (old_rows on INSERT, new_rows on DELETE) cannot be planned.
CREATE OR REPLACE FUNCTION shortages_lines_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- short before, not short now
    UPDATE shortage_records r SET resolved_at = now()
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE o.in_demand AND o.shortage_qty > 0 AND NOT (n.in_demand AND n.shortage_qty > 0)
      AND r.sale_id = o.sale_id AND r.line_no = o.line_no AND r.resolved_at IS NULL;
    -- short now: opened, or its figures moved
    INSERT INTO shortage_records AS r (tenant_id, sale_id, line_no, product_id, sku, quantity_short, shortage_cost)
    SELECT n.tenant_id, n.sale_id, n.line_no, n.product_id, n.sku, n.shortage_qty, n.shortage_cost
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.in_demand AND n.shortage_qty > 0
      AND NOT (o.in_demand AND o.shortage_qty = n.shortage_qty AND o.shortage_cost = n.shortage_cost
               AND o.product_id IS NOT DISTINCT FROM n.product_id)
    ON CONFLICT (sale_id, line_no) WHERE resolved_at IS NULL DO UPDATE
        SET quantity_short = EXCLUDED.quantity_short, shortage_cost = EXCLUDED.shortage_cost,
            product_id = EXCLUDED.product_id, sku = EXCLUDED.sku;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION shortages_lines_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shortage_records AS r (tenant_id, sale_id, line_no, product_id, sku, quantity_short, shortage_cost)
    SELECT n.tenant_id, n.sale_id, n.line_no, n.product_id, n.sku, n.shortage_qty, n.shortage_cost
    FROM new_rows n WHERE n.in_demand AND n.shortage_qty > 0
    ON CONFLICT (sale_id, line_no) WHERE resolved_at IS NULL DO UPDATE
        SET quantity_short = EXCLUDED.quantity_short, shortage_cost = EXCLUDED.shortage_cost,
            product_id = EXCLUDED.product_id, sku = EXCLUDED.sku;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION shortages_lines_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE shortage_records r SET resolved_at = now()
    FROM old_rows o
    WHERE o.in_demand AND o.shortage_qty > 0 AND r.sale_id = o.sale_id AND r.line_no = o.line_no
      AND r.resolved_at IS NULL;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS shortages_lines_inserted ON sale_lines;
CREATE TRIGGER shortages_lines_inserted AFTER INSERT ON sale_lines REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION shortages_lines_inserted();
DROP TRIGGER IF EXISTS shortages_lines_updated ON sale_lines;
CREATE TRIGGER shortages_lines_updated AFTER UPDATE ON sale_lines REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION shortages_lines_updated();
DROP TRIGGER IF EXISTS shortages_lines_deleted ON sale_lines;
CREATE TRIGGER shortages_lines_deleted AFTER DELETE ON sale_lines REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION shortages_lines_deleted();

-- The shortages open now, since now (their beginning was not recorded before this migration).
INSERT INTO shortage_records (tenant_id, sale_id, line_no, product_id, sku, quantity_short, shortage_cost)
SELECT l.tenant_id, l.sale_id, l.line_no, l.product_id, l.sku, l.shortage_qty, l.shortage_cost
FROM sale_lines l WHERE l.in_demand AND l.shortage_qty > 0
ON CONFLICT DO NOTHING;
