-- Tenant isolation enforced by PostgreSQL (docs/security.md).
--
-- Every table that holds a tenant's data has row-level security ENABLEd and FORCEd,
-- with one policy: a row is visible and writable only while the transaction's
-- `app.tenant_id` setting names its tenant. The services set it with
-- `set_config('app.tenant_id', <uuid>, true)` (transaction-local) at the start of each
-- unit of work (shared/db.py), so a pooled connection never carries it over; a
-- statement run without it sees and writes nothing. The services connect as a role
-- that is no superuser, has no BYPASSRLS and owns nothing (created by shared/migrate.py).
--
-- What is genuinely global goes through the few SECURITY DEFINER functions below,
-- each answering one narrow question; none of them returns another tenant's rows to a
-- caller that asked about its own tenant.

-- The tenant of the current unit of work, or NULL (no rows) when none is set. An unset
-- custom setting is NULL; one reset at the end of a transaction is ''.
CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

-- Tables that held tenant data under a realm only: they name their tenant from now on.
ALTER TABLE qbo_entities ADD COLUMN IF NOT EXISTS tenant_id uuid;
UPDATE qbo_entities e SET tenant_id = c.tenant_id FROM qbo_connections c
WHERE c.realm_id = e.realm_id AND e.tenant_id IS NULL;
DELETE FROM qbo_entities WHERE tenant_id IS NULL;  -- a realm never connected: nothing of anyone's
ALTER TABLE qbo_entities ALTER COLUMN tenant_id SET DEFAULT app_current_tenant(),
                         ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE qbo_entities ADD CONSTRAINT qbo_entities_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id);

ALTER TABLE qbo_items ADD COLUMN IF NOT EXISTS tenant_id uuid;
UPDATE qbo_items i SET tenant_id = c.tenant_id FROM qbo_connections c
WHERE c.realm_id = i.realm_id AND i.tenant_id IS NULL;
DELETE FROM qbo_items WHERE tenant_id IS NULL;
ALTER TABLE qbo_items ALTER COLUMN tenant_id SET DEFAULT app_current_tenant(),
                      ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE qbo_items ADD CONSTRAINT qbo_items_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id);

ALTER TABLE sale_skus ADD COLUMN IF NOT EXISTS tenant_id uuid;
UPDATE sale_skus k SET tenant_id = s.tenant_id FROM sales s WHERE s.id = k.sale_id AND k.tenant_id IS NULL;
DELETE FROM sale_skus WHERE tenant_id IS NULL;
ALTER TABLE sale_skus ALTER COLUMN tenant_id SET NOT NULL;
-- 0007's function, now naming the tenant of the sale_skus rows it writes.
CREATE OR REPLACE FUNCTION query_reconcile_sale_skus(sale_ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH current AS MATERIALIZED (
        SELECT s.id, s.tenant_id, s.status, s.type, s.source, s.has_shortage, s.revenue, s.cost,
               coalesce((SELECT r.skus FROM sale_skus r WHERE r.sale_id = s.id), '{}') AS recorded,
               -- the sale's lines by (sale_id, line_no) alone: a plan cached while
               -- sale_lines was small must not walk a tenant's whole sku index
               ARRAY(SELECT DISTINCT l.sku
                     FROM (SELECT l.sku, l.tenant_id FROM sale_lines l WHERE l.sale_id = s.id OFFSET 0) l
                     WHERE l.tenant_id = s.tenant_id AND l.sku IS NOT NULL
                     ORDER BY l.sku) AS actual
        FROM (SELECT DISTINCT u.id FROM unnest(sale_ids) u(id)) a
        CROSS JOIN LATERAL (SELECT * FROM sales s WHERE s.id = a.id OFFSET 0) s
    ), changed AS MATERIALIZED (
        SELECT * FROM current WHERE recorded <> actual
    ), deltas AS (
        INSERT INTO sku_totals_delta (tenant_id, sku, status, type, source, has_shortage, sales, revenue, cost)
        SELECT c.tenant_id, k.sku, c.status, c.type, c.source, c.has_shortage,
               sum(k.sign), sum(k.sign * c.revenue), sum(k.sign * c.cost)
        FROM changed c
        CROSS JOIN LATERAL (SELECT x.sku, 1 AS sign FROM unnest(c.actual) x(sku) WHERE x.sku <> ALL (c.recorded)
                            UNION ALL
                            SELECT x.sku, -1 FROM unnest(c.recorded) x(sku) WHERE x.sku <> ALL (c.actual)) k
        GROUP BY 1, 2, 3, 4, 5, 6
    )
    INSERT INTO sale_skus AS r (sale_id, skus, tenant_id)
    SELECT c.id, c.actual, c.tenant_id FROM changed c
    ON CONFLICT (sale_id) DO UPDATE SET skus = EXCLUDED.skus;
END $$;

-- Sale ids are what the API calls a sale's `id`. A global sequence would let a tenant read
-- off how many sales everyone else records, so a new sale gets a random id instead: 52
-- bits from the operating system's random source (below 2^53, exact in every JSON
-- client). A collision is a unique violation, retried as such.
CREATE OR REPLACE FUNCTION random_public_id() RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT ('x' || lpad(substr(replace(gen_random_uuid()::text, '-', ''), 1, 13), 16, '0'))::bit(64)::bigint + 1
$$;
ALTER TABLE sales ALTER COLUMN id SET DEFAULT random_public_id();

-- The tenants table: a tenant sees its own row.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON tenants;
CREATE POLICY tenant_isolation ON tenants USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());

-- Every table with a tenant_id column (dead letters may have none: a message whose tenant
-- could not be read is recorded, and only the owner sees it).
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.relname);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', t.relname);
        IF t.relname = 'dead_letters' THEN
            EXECUTE 'CREATE POLICY tenant_isolation ON dead_letters USING (tenant_id = app_current_tenant())
                     WITH CHECK (tenant_id IS NULL OR tenant_id = app_current_tenant())';
        ELSE
            EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant())
                            WITH CHECK (tenant_id = app_current_tenant())', t.relname);
        END IF;
    END LOOP;
END $$;

-- ---------------------------------------------------------------------------------------
-- The global questions (SECURITY DEFINER, owned by the schema owner, search_path pinned).

-- API-key authentication, before any tenant is known: the live key with this prefix.
CREATE OR REPLACE FUNCTION api_key_lookup(p_prefix text)
RETURNS TABLE (id uuid, tenant_id uuid, key_hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.id, k.tenant_id, k.key_hash FROM api_keys k WHERE k.prefix = p_prefix AND k.revoked_at IS NULL
$$;

-- Webhook routing and the QuickBooks worker: which tenant a realm is linked to, if any.
CREATE OR REPLACE FUNCTION qbo_realm_tenant(p_realm text)
RETURNS TABLE (tenant_id uuid, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.tenant_id, c.status FROM qbo_connections c WHERE c.realm_id = p_realm
$$;

-- The catch-up scheduler: every connected realm, its tenant and its watermark.
CREATE OR REPLACE FUNCTION qbo_connected_realms()
RETURNS TABLE (realm_id text, tenant_id uuid, cdc_watermark timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.realm_id, c.tenant_id, c.cdc_watermark FROM qbo_connections c WHERE c.status = 'connected'
$$;

-- The outbox relay: the oldest unsent events of every tenant, locked for this transaction
-- (SKIP LOCKED lets several relays share the outbox).
CREATE OR REPLACE FUNCTION outbox_claim(p_limit int)
RETURNS TABLE (seq bigint, event_id uuid, tenant_id uuid, event_type text, correlation_id text, body bytea)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.seq, e.event_id, e.tenant_id, e.event_type, e.correlation_id, e.body
    FROM outbox o JOIN event_log e ON e.seq = o.seq
    ORDER BY o.seq LIMIT p_limit FOR UPDATE OF o SKIP LOCKED
$$;

-- The rollup folder: the tenants with deltas not folded yet (it then folds each under its
-- own tenant).
CREATE OR REPLACE FUNCTION rollup_pending_tenants()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT tenant_id FROM sales_totals_delta
    UNION SELECT tenant_id FROM product_totals_delta
    UNION SELECT tenant_id FROM customer_totals_delta
    UNION SELECT tenant_id FROM sku_totals_delta
    UNION SELECT tenant_id FROM sale_cost_keys_stale
$$;

REVOKE ALL ON FUNCTION api_key_lookup(text), qbo_realm_tenant(text), qbo_connected_realms(), outbox_claim(int),
    rollup_pending_tenants() FROM PUBLIC;
