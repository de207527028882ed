-- One pipeline, pluggable sales channels (issue 22, docs/channels.md).
--
-- The channel tables keep their historical qbo_ names (the security catalog, the operators'
-- queries and the tests name them) and gain a `provider` column: 'quickbooks' for every row
-- that exists today (the default), 'xero' for the next provider. Every key that identified a
-- row by the provider's own ids now starts with the provider, so a QuickBooks realm and a
-- Xero organisation with the same id never meet. Row-level security is unchanged (the
-- tenant tables keep their forced `tenant_isolation` policy; deliveries and notifications
-- still carry no tenant and reach one only through channel_realm_tenant()).

ALTER TABLE qbo_connections ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'quickbooks'
    CHECK (provider IN ('quickbooks', 'xero'));
ALTER TABLE qbo_deliveries ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'quickbooks'
    CHECK (provider IN ('quickbooks', 'xero'));
ALTER TABLE qbo_notifications ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'quickbooks'
    CHECK (provider IN ('quickbooks', 'xero'));
ALTER TABLE qbo_entities ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'quickbooks'
    CHECK (provider IN ('quickbooks', 'xero'));
ALTER TABLE qbo_items ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'quickbooks'
    CHECK (provider IN ('quickbooks', 'xero'));
ALTER TABLE qbo_sync_runs ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'quickbooks'
    CHECK (provider IN ('quickbooks', 'xero'));

-- Keys: (provider, the provider's id).
ALTER TABLE qbo_connections DROP CONSTRAINT IF EXISTS qbo_connections_pkey;
ALTER TABLE qbo_connections ADD CONSTRAINT qbo_connections_pkey PRIMARY KEY (provider, realm_id);

ALTER TABLE qbo_entities DROP CONSTRAINT IF EXISTS qbo_entities_pkey;
ALTER TABLE qbo_entities ADD CONSTRAINT qbo_entities_pkey PRIMARY KEY (provider, realm_id, entity, entity_id);

ALTER TABLE qbo_items DROP CONSTRAINT IF EXISTS qbo_items_pkey;
ALTER TABLE qbo_items ADD CONSTRAINT qbo_items_pkey PRIMARY KEY (provider, realm_id, item_id);

ALTER TABLE qbo_notifications DROP CONSTRAINT IF EXISTS qbo_notifications_dedupe_key_key;
ALTER TABLE qbo_notifications ADD CONSTRAINT qbo_notifications_dedupe_key UNIQUE (provider, dedupe_key);
DROP INDEX IF EXISTS qbo_notifications_open;
CREATE INDEX IF NOT EXISTS qbo_notifications_open ON qbo_notifications (provider, realm_id, id)
    WHERE status IN ('pending', 'processing');

DROP INDEX IF EXISTS qbo_deliveries_body_sha256;
CREATE UNIQUE INDEX IF NOT EXISTS qbo_deliveries_body_sha256 ON qbo_deliveries (provider, body_sha256);

DROP INDEX IF EXISTS qbo_sync_runs_realm;
CREATE INDEX IF NOT EXISTS qbo_sync_runs_realm ON qbo_sync_runs (tenant_id, provider, realm_id, started_at);

-- A sale's source may be Xero now (the sales key is (tenant_id, source, type, external_id):
-- one sale per source, so a QuickBooks and a Xero invoice numbered alike are two sales).
ALTER TABLE sales DROP CONSTRAINT IF EXISTS sales_source_check;
ALTER TABLE sales ADD CONSTRAINT sales_source_check CHECK (source IN ('quickbooks', 'xero', 'manual'));

-- The global questions, per provider (SECURITY DEFINER, owned by the schema owner,
-- search_path pinned, EXECUTE revoked from PUBLIC; shared.migrate grants the service role).

-- Webhook routing and token refresh: which tenant an account of a provider is linked to.
CREATE OR REPLACE FUNCTION channel_realm_tenant(p_provider text, p_realm text)
RETURNS TABLE (tenant_id uuid, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.tenant_id, c.status FROM qbo_connections c WHERE c.provider = p_provider AND c.realm_id = p_realm
$$;

-- The catch-up scheduler: every connected account of every provider.
CREATE OR REPLACE FUNCTION channel_connected_realms()
RETURNS TABLE (provider text, realm_id text, tenant_id uuid, cdc_watermark timestamptz, sales_tracking boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.provider, c.realm_id, c.tenant_id, c.cdc_watermark,
           (t.plan = 'advanced' AND t.receiving_enabled)
    FROM qbo_connections c JOIN tenants t ON t.id = c.tenant_id WHERE c.status = 'connected'
$$;

-- The QuickBooks-only lookups of 0017/0023 answer for QuickBooks only.
CREATE OR REPLACE FUNCTION qbo_realm_tenant(p_realm text)
RETURNS TABLE (tenant_id uuid, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.tenant_id, c.status FROM qbo_connections c WHERE c.provider = 'quickbooks' AND c.realm_id = p_realm
$$;

DROP FUNCTION IF EXISTS qbo_connected_realms();
CREATE FUNCTION qbo_connected_realms()
RETURNS TABLE (realm_id text, tenant_id uuid, cdc_watermark timestamptz, sales_tracking boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.realm_id, c.tenant_id, c.cdc_watermark, (t.plan = 'advanced' AND t.receiving_enabled)
    FROM qbo_connections c JOIN tenants t ON t.id = c.tenant_id
    WHERE c.provider = 'quickbooks' AND c.status = 'connected'
$$;

REVOKE ALL ON FUNCTION qbo_connected_realms(), channel_realm_tenant(text, text), channel_connected_realms(), qbo_realm_tenant(text)
    FROM PUBLIC;
