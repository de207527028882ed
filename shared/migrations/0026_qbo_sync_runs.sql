-- "Sync now" runs (issue 18): POST /api/v1/connections/quickbooks/{realm}/sync records one,
-- the catch-up that serves it fills in what it did (services/ingest/qbo/sync.py, SyncRun).
-- created/updated/voided/deleted: 'Entity:Id' of the QuickBooks sales (e.g. 'Invoice:130');
-- the API shows each with the query API's sale id once the sale is costed.
CREATE TABLE IF NOT EXISTS qbo_sync_runs (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id),
    realm_id    text NOT NULL,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    created     text[] NOT NULL DEFAULT '{}',
    updated     text[] NOT NULL DEFAULT '{}',
    voided      text[] NOT NULL DEFAULT '{}',
    deleted     text[] NOT NULL DEFAULT '{}',
    skipped     int NOT NULL DEFAULT 0,
    failed      int NOT NULL DEFAULT 0,
    error       text
);
CREATE INDEX IF NOT EXISTS qbo_sync_runs_realm ON qbo_sync_runs (tenant_id, realm_id, started_at);

ALTER TABLE qbo_sync_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE qbo_sync_runs FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON qbo_sync_runs;
CREATE POLICY tenant_isolation ON qbo_sync_runs USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- The connect flow's optional initial sync date (GET /oauth/quickbooks/connect?since=…).
ALTER TABLE oauth_states ADD COLUMN IF NOT EXISTS initial_since timestamptz;
