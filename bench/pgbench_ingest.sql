-- pgbench baseline: the database transaction of one accepted manual sale
-- (POST /api/v1/sales, services/ingest/service.py create_sale), with nothing
-- else (no HTTP, no pydantic, no relay). Run by bench/ingest_bench.py on the
-- real tables of its bench database, for a tenant of its own, with the same
-- statements the service sends (services/ingest/repository.py TENANT,
-- INSERT_SALE, APPEND_EVENT) and the same row sizes: the bench passes a
-- manual_sales body and an event_log body captured from its HTTP run:
--   pgbench -n -M prepared -c 50 -j 2 -T 10 -f bench/pgbench_ingest.sql \
--     -D tenant=<uuid> -D sale_body='<json>' -D event_body='<json>' -U partsemble_app partsemble_bench_ingest
-- -M prepared is required: variables become bind parameters (no quoting).
-- Run as the service role (not the owner), each transaction scoped to the tenant as
-- shared/db.py tenant_transaction does, so row-level security's policy is paid as by
-- the service.
-- References and event ids are random (collisions: ~1e-12 per pair).
\set r random(1, 999999999999)
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT id, name, home_currency FROM tenants WHERE id = :tenant;
INSERT INTO manual_sales (tenant_id, reference, type, version, entered_at, body)
VALUES (:tenant, 'PGB-' || :r::text, 'invoice', 1, now(), :sale_body::jsonb)
ON CONFLICT (tenant_id, reference) DO NOTHING RETURNING version, entered_at;
WITH logged AS (
    INSERT INTO event_log (event_id, tenant_id, event_type, source, occurred_at, correlation_id, body)
    VALUES (gen_random_uuid(), :tenant, 'sale.upserted', 'manual', now(), gen_random_uuid()::text,
            convert_to(:event_body, 'UTF8'))
    RETURNING seq)
INSERT INTO outbox (seq) SELECT seq FROM logged;
COMMIT;
