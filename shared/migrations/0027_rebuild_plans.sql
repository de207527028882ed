-- The return lots of a group of sales (RETURN_LOTS_OF_SALES) are found from their lines:
-- without an index on lots.return_line_id the planner hashes or scans every lot of every
-- tenant (and, on statistics taken when the tables were empty, nests that scan in a
-- loop). With it, the plan is a few index probes whatever the statistics say.
CREATE INDEX IF NOT EXISTS lots_return_line ON lots (return_line_id) WHERE return_line_id IS NOT NULL;

-- The API-key cache of the HTTP services (shared/api_keys.py KeyCache) skips the lookup
-- round trip for a key seen within the last second; the first statement of each unit of
-- work of the request then checks, in the same round trip that scopes it to the tenant,
-- that the key is still live and its tenant still entitled (shared/db.py tenant_setting_sql):
-- a revocation, an expiry or a downgrade takes effect at once, not after the cache's second.
CREATE OR REPLACE FUNCTION api_key_check(p_id uuid)
RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.id = p_id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
          AND t.plan = 'advanced' AND t.receiving_enabled
    ) THEN
        RAISE EXCEPTION 'the API key is no longer live or its tenant no longer entitled'
            USING ERRCODE = '28000';  -- invalid_authorization_specification
    END IF;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION api_key_check(uuid) FROM PUBLIC;
