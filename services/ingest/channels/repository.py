"""SQL of the channel pipeline, for every provider: each statement names the provider
(the last parameter) next to the provider's own ids (realm, entity, item ids)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.ingest.channels.provider import ChangeNotification
from shared.db import Connection

# A body is stored once (0019_webhook_delivery_dedupe.sql): a retry or replay of the same
# bytes only counts.
INSERT_DELIVERY = """
INSERT INTO qbo_deliveries (content_type, body, parse_error, body_sha256, provider)
VALUES ($1, $2, $3, sha256($2), $4)
ON CONFLICT (provider, body_sha256) DO UPDATE
    SET received_count = qbo_deliveries.received_count + 1, last_received_at = now()
RETURNING id, received_count"""
INSERT_NOTIFICATIONS = """
INSERT INTO qbo_notifications (dedupe_key, delivery_id, realm_id, entity, entity_id, operation, deleted_id,
                               occurred_at, status, provider)
SELECT u.key, $1, u.realm, u.entity, u.entity_id, u.operation, u.deleted_id, u.occurred_at,
       CASE WHEN EXISTS (SELECT 1 FROM channel_realm_tenant($9, u.realm) c WHERE c.status = 'connected')
            THEN 'pending' ELSE 'ignored' END, $9
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
     AS u(key, realm, entity, entity_id, operation, deleted_id, occurred_at)
ON CONFLICT (provider, dedupe_key) DO NOTHING
RETURNING realm_id, status"""

CONNECTION = "SELECT * FROM qbo_connections WHERE realm_id = $1 AND provider = $2"
# Why FOR UPDATE: one token refresh per realm at a time, across processes (single flight).
LOCK_CONNECTION = "SELECT * FROM qbo_connections WHERE realm_id = $1 AND provider = $2 FOR UPDATE"
CONNECTIONS_OF_TENANT = """
SELECT provider, realm_id, status, access_expires_at, cdc_watermark, last_synced_at, last_error, last_error_at,
       sync_failures, token_refreshes, created_at, updated_at
FROM qbo_connections WHERE tenant_id = $1 AND ($2::text IS NULL OR provider = $2) ORDER BY provider, realm_id"""
# Across tenants: through SECURITY DEFINER functions (0017_row_level_security.sql).
CONNECTED_REALMS = """
SELECT realm_id, tenant_id, cdc_watermark, sales_tracking FROM channel_connected_realms() WHERE provider = $1"""
REALM_TENANT = "SELECT tenant_id, status FROM channel_realm_tenant($2, $1)"
UPSERT_CONNECTION = """
INSERT INTO qbo_connections (realm_id, tenant_id, access_token, refresh_token, access_expires_at, status, provider)
VALUES ($1, $2, $3, $4, $5, 'connected', $6)
ON CONFLICT (provider, realm_id) DO UPDATE
SET access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,
    access_expires_at = EXCLUDED.access_expires_at, status = 'connected', updated_at = now()
WHERE qbo_connections.tenant_id = EXCLUDED.tenant_id
RETURNING realm_id"""
STORE_TOKENS = """
UPDATE qbo_connections SET access_token = $2, refresh_token = $3, access_expires_at = $4,
       token_refreshes = token_refreshes + 1, updated_at = now() WHERE realm_id = $1 AND provider = $5"""
SET_STATUS = "UPDATE qbo_connections SET status = $2, updated_at = now() WHERE realm_id = $1 AND provider = $3"
SET_WATERMARK = """
UPDATE qbo_connections SET cdc_watermark = GREATEST(coalesce(cdc_watermark, $2), $2), last_synced_at = now(),
       last_error = NULL, sync_failures = 0, updated_at = now()
WHERE realm_id = $1 AND provider = $3"""
SYNC_FAILED = """
UPDATE qbo_connections SET last_error = $2, last_error_at = now(), sync_failures = sync_failures + 1,
       updated_at = now()
WHERE realm_id = $1 AND provider = $3 RETURNING sync_failures"""

# The worker: claims are short transactions (status 'processing'); a claim older
# than 5 minutes (a worker that died) is taken again.
_OPEN = "(status = 'pending' OR (status = 'processing' AND claimed_at < now() - interval '5 minutes'))"
PENDING_REALMS = (
    f"SELECT realm_id, count(*) AS n FROM qbo_notifications WHERE provider = $1 AND {_OPEN} GROUP BY realm_id"
)
CLAIM = f"""
UPDATE qbo_notifications SET status = 'processing', claimed_at = now()
WHERE id IN (SELECT id FROM qbo_notifications WHERE provider = $3 AND realm_id = $1 AND {_OPEN}
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, realm_id, entity, entity_id, operation, deleted_id, occurred_at"""
FINISH = """
UPDATE qbo_notifications SET status = $2, attempts = attempts + 1, last_error = $3, handled_at = now()
WHERE id = ANY($1::bigint[])"""
RETRY_LATER = """
UPDATE qbo_notifications SET attempts = attempts + 1, last_error = $2,
       status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END
WHERE id = ANY($1::bigint[])"""

ENSURE_ENTITY = """
INSERT INTO qbo_entities (realm_id, entity, entity_id, provider) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"""
# Why FOR UPDATE: versions of one QuickBooks entity are turned into events one at a time.
LOCK_ENTITY = """
SELECT * FROM qbo_entities WHERE realm_id = $1 AND entity = $2 AND entity_id = $3 AND provider = $4 FOR UPDATE"""
STORE_ENTITY = """
UPDATE qbo_entities SET sync_token = $4, remap_seq = $5, deleted = $6, body = $7, item_ids = $8,
       last_updated = $9, voided = voided OR $10, updated_at = now()
WHERE realm_id = $1 AND entity = $2 AND entity_id = $3 AND provider = $11"""
SALES_WITH_ITEMS = """
SELECT entity, entity_id FROM qbo_entities
WHERE realm_id = $1 AND provider = $3 AND NOT deleted AND body IS NOT NULL AND item_ids && $2::text[]
ORDER BY entity, entity_id"""

ITEMS = """
SELECT item_id, name, sku, type, merged_into, fully_qualified_name FROM qbo_items
WHERE realm_id = $1 AND provider = $2"""
UPSERT_ITEM = """
INSERT INTO qbo_items (realm_id, item_id, name, sku, type, active, sync_token, merged_into, fully_qualified_name,
                       provider)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (provider, realm_id, item_id) DO UPDATE SET name = EXCLUDED.name, sku = EXCLUDED.sku, type = EXCLUDED.type,
    fully_qualified_name = EXCLUDED.fully_qualified_name,
    active = EXCLUDED.active, sync_token = EXCLUDED.sync_token,
    merged_into = coalesce(EXCLUDED.merged_into, qbo_items.merged_into), updated_at = now()"""
MERGE_ITEM = """
UPDATE qbo_items SET merged_into = $3, active = false, updated_at = now()
WHERE realm_id = $1 AND item_id = $2 AND provider = $4"""
# "Sync now" runs (0026_qbo_sync_runs.sql).
START_RUN = "INSERT INTO qbo_sync_runs (id, tenant_id, realm_id, provider) VALUES ($1, $2, $3, $4)"
FINISH_RUNS = """
UPDATE qbo_sync_runs SET status = $2, finished_at = now(), created = $3, updated = $4, voided = $5, deleted = $6,
       skipped = $7, failed = $8, error = $9
WHERE id = ANY($1::uuid[]) AND status = 'running'"""
RUN = "SELECT * FROM qbo_sync_runs WHERE id = $1 AND realm_id = $2 AND provider = $3"
RUNNING = """
SELECT true FROM qbo_sync_runs
WHERE realm_id = $1 AND provider = $3 AND status = 'running' AND started_at > now() - $2::interval"""
# The query API's ids of the provider's sales ('Entity:Id' → sale id), where costed already.
SALE_IDS = """
SELECT k.key, s.id FROM unnest($1::text[], $2::text[], $3::text[]) AS k(key, type, external_id)
JOIN sales s ON s.tenant_id = app_current_tenant() AND s.source = $4 AND s.type = k.type
            AND s.external_id = k.external_id"""
# The product's explicit item id of the provider (a column of catalog_products per provider).
CATALOG = {
    "quickbooks": "SELECT sku, name, qbo_item_id AS item_id FROM catalog_products WHERE tenant_id = $1",
    "xero": "SELECT sku, name, xero_item_code AS item_id FROM catalog_products WHERE tenant_id = $1",
}
REALMS_OF_TENANT = """
SELECT realm_id FROM qbo_connections WHERE tenant_id = $1 AND provider = $2 AND status = 'connected'"""


class ChannelRepository:
    """The pipeline's SQL for one provider (``provider``: its name, the sales' source)."""

    def __init__(self, conn: Connection, provider: str = "quickbooks"):
        self.conn = conn
        self.provider = provider

    async def store_delivery(
        self,
        content_type: str | None,
        body: bytes,
        parse_error: str | None,
        notifications: Sequence[ChangeNotification],
    ) -> list[asyncpg.Record]:
        """Store the delivery (once per distinct body; a repeat bumps received_count) and its
        notifications (new ones only); returns the new notifications' (realm_id, status)."""
        delivery_id = await self.conn.fetchval(INSERT_DELIVERY, content_type, body, parse_error, self.provider)
        if not notifications:
            return []
        cols = list(
            zip(
                *[
                    (n.dedupe_key, n.realm_id, n.entity, n.entity_id, n.operation, n.deleted_id, n.occurred_at)
                    for n in notifications
                ],
                strict=True,  # transposes rows of 7 columns
            )
        )
        return await self.conn.fetch(INSERT_NOTIFICATIONS, delivery_id, *map(list, cols), self.provider)

    async def connection(self, realm_id: str, lock: bool = False) -> asyncpg.Record | None:
        return await self.conn.fetchrow(LOCK_CONNECTION if lock else CONNECTION, realm_id, self.provider)

    async def connections_of(self, tenant_id: uuid.UUID, every_provider: bool = False) -> list[asyncpg.Record]:
        """The tenant's connections of this provider (``every_provider``: of all providers)."""
        return await self.conn.fetch(CONNECTIONS_OF_TENANT, tenant_id, None if every_provider else self.provider)

    async def connected_realms(self) -> list[asyncpg.Record]:
        """Every connected realm with its tenant (the one cross-tenant read of the worker)."""
        return await self.conn.fetch(CONNECTED_REALMS, self.provider)

    async def realm_tenant(self, realm_id: str) -> asyncpg.Record | None:
        """The tenant a realm is linked to (any status), whoever asks."""
        return await self.conn.fetchrow(REALM_TENANT, realm_id, self.provider)

    async def realms_of(self, tenant_id: uuid.UUID) -> list[str]:
        return [r["realm_id"] for r in await self.conn.fetch(REALMS_OF_TENANT, tenant_id, self.provider)]

    async def upsert_connection(
        self, realm_id: str, tenant_id: uuid.UUID, access: bytes, refresh: bytes, expires_at: datetime
    ) -> bool:
        linked = await self.conn.fetchval(
            UPSERT_CONNECTION, realm_id, tenant_id, access, refresh, expires_at, self.provider
        )
        return linked is not None

    async def store_tokens(self, realm_id: str, access: bytes, refresh: bytes, expires_at: datetime) -> None:
        await self.conn.execute(STORE_TOKENS, realm_id, access, refresh, expires_at, self.provider)

    async def set_status(self, realm_id: str, status: str) -> None:
        await self.conn.execute(SET_STATUS, realm_id, status, self.provider)

    async def advance_watermark(self, realm_id: str, at: datetime) -> None:
        """A completed catch-up: the watermark moves, the sync status says so."""
        await self.conn.execute(SET_WATERMARK, realm_id, at, self.provider)

    async def sync_failed(self, realm_id: str, error: str) -> int:
        """A failed catch-up (the watermark stays); returns the consecutive failures."""
        return await self.conn.fetchval(SYNC_FAILED, realm_id, error[:1000], self.provider) or 0

    async def start_run(self, run_id: uuid.UUID, tenant_id: uuid.UUID, realm_id: str) -> None:
        await self.conn.execute(START_RUN, run_id, tenant_id, realm_id, self.provider)

    async def finish_runs(self, run_ids: Sequence[uuid.UUID], status: str, report: Any, error: str | None) -> None:
        """``report``: a sync.SyncReport (what the catch-up did)."""
        await self.conn.execute(
            FINISH_RUNS,
            list(run_ids),
            status,
            report.created,
            report.updated,
            report.voided,
            report.deleted,
            report.skipped,
            report.failed,
            error,
        )

    async def run(self, run_id: uuid.UUID, realm_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(RUN, run_id, realm_id, self.provider)

    async def running(self, realm_id: str, within: timedelta = timedelta(minutes=15)) -> bool:
        return bool(await self.conn.fetchval(RUNNING, realm_id, within, self.provider))

    async def sale_ids(self, keys: Sequence[tuple[str, str, str]]) -> dict[str, int]:
        """(key, sale type, external id) → the query API's id of each costed sale."""
        if not keys:
            return {}
        rows = await self.conn.fetch(SALE_IDS, *map(list, zip(*keys, strict=True)), self.provider)
        return {r["key"]: r["id"] for r in rows}

    async def pending_realms(self) -> list[asyncpg.Record]:
        return await self.conn.fetch(PENDING_REALMS, self.provider)

    async def claim(self, realm_id: str, limit: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(CLAIM, realm_id, limit, self.provider)

    async def finish(self, ids: Sequence[int], status: str = "done", error: str | None = None) -> None:
        if ids:
            await self.conn.execute(FINISH, list(ids), status, error)

    async def retry_later(self, ids: Sequence[int], error: str, max_attempts: int) -> None:
        if ids:
            await self.conn.execute(RETRY_LATER, list(ids), error[:1000], max_attempts)

    async def lock_entity(self, realm_id: str, entity: str, entity_id: str) -> asyncpg.Record:
        await self.conn.execute(ENSURE_ENTITY, realm_id, entity, entity_id, self.provider)
        row = await self.conn.fetchrow(LOCK_ENTITY, realm_id, entity, entity_id, self.provider)
        if row is None:  # ENSURE_ENTITY just made sure it exists
            raise LookupError(f"no {entity} {entity_id} in realm {realm_id}")
        return row

    async def store_entity(
        self,
        realm_id: str,
        entity: str,
        entity_id: str,
        sync_token: int | None,
        remap_seq: int,
        deleted: bool,
        body: dict[str, Any] | None,
        item_ids: Sequence[str] | None,
        last_updated: datetime | None,
        voided: bool = False,
    ) -> None:
        """``voided`` only ever turns the entity's void flag on (a void is terminal)."""
        await self.conn.execute(
            STORE_ENTITY,
            realm_id,
            entity,
            entity_id,
            sync_token,
            remap_seq,
            deleted,
            body,
            item_ids,
            last_updated,
            voided,
            self.provider,
        )

    async def sales_with_items(self, realm_id: str, item_ids: Sequence[str]) -> list[asyncpg.Record]:
        return await self.conn.fetch(SALES_WITH_ITEMS, realm_id, list(item_ids), self.provider)

    async def items(self, realm_id: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(ITEMS, realm_id, self.provider)

    async def upsert_item(
        self,
        realm_id: str,
        item_id: str,
        name: str | None,
        sku: str | None,
        item_type: str | None,
        active: bool,
        sync_token: int,
        merged_into: str | None = None,
        fully_qualified_name: str | None = None,
    ) -> None:
        await self.conn.execute(
            UPSERT_ITEM,
            realm_id,
            item_id,
            name,
            sku,
            item_type,
            active,
            sync_token,
            merged_into,
            fully_qualified_name,
            self.provider,
        )

    async def merge_item(self, realm_id: str, item_id: str, into: str) -> None:
        await self.conn.execute(MERGE_ITEM, realm_id, item_id, into, self.provider)

    async def catalog(self, tenant_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(CATALOG[self.provider], tenant_id)
