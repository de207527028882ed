-- QuickBooks sync status and issue-16 bookkeeping (docs/quickbooks.md).
--
-- qbo_connections (already under RLS, 0017): how the last catch-up went.
--   last_synced_at: when a catch-up last completed (and moved the watermark);
--   last_error / last_error_at: the last failed catch-up (e.g. a CDC answered 200 with a
--   Fault); last_error is cleared by the next success, last_error_at is kept;
--   sync_failures: consecutive failed catch-ups (the worker's retry backoff).
ALTER TABLE qbo_connections ADD COLUMN IF NOT EXISTS last_synced_at timestamptz,
                            ADD COLUMN IF NOT EXISTS last_error text,
                            ADD COLUMN IF NOT EXISTS last_error_at timestamptz,
                            ADD COLUMN IF NOT EXISTS sync_failures int NOT NULL DEFAULT 0;

-- qbo_entities: a sale known to be voided (by a Void notification, a void marker or its
-- read-back) stays voided, whatever later read-backs or re-mappings carry.
ALTER TABLE qbo_entities ADD COLUMN IF NOT EXISTS voided boolean NOT NULL DEFAULT false;

-- qbo_items: the item's FullyQualifiedName (Parent:Child) next to its leaf Name, for name mapping.
ALTER TABLE qbo_items ADD COLUMN IF NOT EXISTS fully_qualified_name text;
