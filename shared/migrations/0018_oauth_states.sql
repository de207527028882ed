-- The QuickBooks connect flow's single-use OAuth states (services/ingest/qbo/state.py).
--
-- `GET /oauth/quickbooks/connect` stores one row per flow: the SHA-256 of the state's
-- random nonce and of the random browser secret held in the starting browser's cookie
-- (neither secret itself is stored). The callback consumes the row (`used_at`) in the
-- transaction that links the realm, so a state links at most once, only before
-- `expires_at`, and only from the browser that started the flow.
CREATE TABLE IF NOT EXISTS oauth_states (
    nonce_hash   bytea PRIMARY KEY,
    tenant_id    uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id),
    browser_hash bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX IF NOT EXISTS oauth_states_tenant_expires ON oauth_states (tenant_id, expires_at);

ALTER TABLE oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_states FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON oauth_states;
CREATE POLICY tenant_isolation ON oauth_states USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());
