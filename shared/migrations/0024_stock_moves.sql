-- The stock ledger (issue 18): every change of a product's quantity on hand, written by the
-- costing engine in the transaction that applies the fact (services/costing/ledger.py).
--
-- kind: RECEIPT (a lot received: +quantity), CORRECTION (a received lot's quantity changed:
--   the difference), SALE (a sale line entered demand: -quantity), SALE_REVERSAL (a sale
--   voided, deleted or edited, or a credit memo's return undone: the previous version's
--   quantities come back), RETURN (a posted credit memo's return lot: +quantity).
-- moved_at: the business time: the lot's received_at, or the start (UTC) of the sale's date.
-- Per product, sum(quantity) = received + returned - sold (in demand), whatever order the
-- facts arrived in: every row is a difference against the previously applied state. It is
-- negative while sales are short. No foreign keys (they would be checked per row on the
-- costing path); a tenant's rebuild deletes its rows with the rest of its costing state.
CREATE TABLE IF NOT EXISTS stock_moves (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT app_current_tenant(),
    product_id  bigint NOT NULL,
    moved_at    timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('RECEIPT', 'CORRECTION', 'SALE', 'SALE_REVERSAL', 'RETURN')),
    quantity    numeric NOT NULL,
    lot_number  text,
    sale_id     bigint,
    line_no     int,
    event_id    uuid,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS stock_moves_product ON stock_moves (tenant_id, product_id, moved_at, id);

ALTER TABLE stock_moves ENABLE ROW LEVEL SECURITY;
ALTER TABLE stock_moves FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON stock_moves;
CREATE POLICY tenant_isolation ON stock_moves USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- Opening balance of the data already costed (a superuser owner sees every tenant's rows).
INSERT INTO stock_moves (tenant_id, product_id, moved_at, kind, quantity, lot_number, sale_id, line_no)
SELECT lot.tenant_id, lot.product_id, lot.received_at, CASE WHEN lot.is_return THEN 'RETURN' ELSE 'RECEIPT' END,
       lot.quantity, lot.lot_number, rl.sale_id, rl.line_no
FROM lots lot LEFT JOIN sale_lines rl ON rl.id = lot.return_line_id
WHERE NOT EXISTS (SELECT 1 FROM stock_moves);
INSERT INTO stock_moves (tenant_id, product_id, moved_at, kind, quantity, sale_id, line_no)
SELECT l.tenant_id, l.product_id, (l.txn_date::timestamp AT TIME ZONE 'UTC'), 'SALE', -l.quantity, l.sale_id, l.line_no
FROM sale_lines l
WHERE l.in_demand AND NOT EXISTS (SELECT 1 FROM stock_moves m WHERE m.kind = 'SALE');
