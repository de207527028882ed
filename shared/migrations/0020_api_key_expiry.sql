-- API keys: an optional expiry, and when each key was last used (shown by `admin list-keys`).
--
-- expires_at: NULL never expires. An expired key authenticates nothing, exactly like an
--   unknown or revoked one (the service answers 401 and says no more).
-- last_used_at: written by the services at most once a minute per key (shared/api_keys.py
--   KeyUsage), inside the key's own tenant-scoped transaction; NULL: never used.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS expires_at timestamptz NULL,
                     ADD COLUMN IF NOT EXISTS last_used_at timestamptz NULL;

-- API-key authentication, before any tenant is known: the live key with this prefix (not
-- revoked, not expired). The result type changes, so the function is dropped and made anew.
DROP FUNCTION IF EXISTS api_key_lookup(text);
CREATE FUNCTION api_key_lookup(p_prefix text)
RETURNS TABLE (id uuid, tenant_id uuid, key_hash bytea, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.id, k.tenant_id, k.key_hash, k.expires_at FROM api_keys k
    WHERE k.prefix = p_prefix AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
$$;
REVOKE ALL ON FUNCTION api_key_lookup(text) FROM PUBLIC;
