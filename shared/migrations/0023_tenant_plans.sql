-- Plans (issue 18): sales tracking is for tenants on the Advanced plan with receiving enabled.
--
-- plan: starter | standard | advanced (default advanced: existing tenants keep what they had).
-- receiving_enabled: the tenant receives finished goods (lots) here.
-- Entitled to sales tracking = plan 'advanced' AND receiving_enabled. While not entitled, the
-- sales-tracking endpoints answer 403 and QuickBooks changes are stored but not processed;
-- changing either column never deletes anything (docs/api.md, "Plans").
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS plan text NOT NULL DEFAULT 'advanced'
                        CHECK (plan IN ('starter', 'standard', 'advanced')),
                    ADD COLUMN IF NOT EXISTS receiving_enabled boolean NOT NULL DEFAULT true;

-- API-key authentication also says whether the key's tenant is entitled to sales tracking,
-- so the check costs nothing per request (the lookup runs anyway). The result type changes,
-- so the function is dropped and made anew.
DROP FUNCTION IF EXISTS api_key_lookup(text);
CREATE FUNCTION api_key_lookup(p_prefix text)
RETURNS TABLE (id uuid, tenant_id uuid, key_hash bytea, expires_at timestamptz, sales_tracking boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.id, k.tenant_id, k.key_hash, k.expires_at, (t.plan = 'advanced' AND t.receiving_enabled)
    FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
    WHERE k.prefix = p_prefix AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
$$;
REVOKE ALL ON FUNCTION api_key_lookup(text) FROM PUBLIC;

-- The catch-up scheduler and the notification worker: every connected realm, its tenant,
-- its watermark, and whether the tenant is entitled to sales tracking (else its
-- notifications stay pending and its catch-up waits).
DROP FUNCTION IF EXISTS qbo_connected_realms();
CREATE FUNCTION qbo_connected_realms()
RETURNS TABLE (realm_id text, tenant_id uuid, cdc_watermark timestamptz, sales_tracking boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.realm_id, c.tenant_id, c.cdc_watermark, (t.plan = 'advanced' AND t.receiving_enabled)
    FROM qbo_connections c JOIN tenants t ON t.id = c.tenant_id WHERE c.status = 'connected'
$$;
REVOKE ALL ON FUNCTION qbo_connected_realms() FROM PUBLIC;
