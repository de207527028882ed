"""SQL of the ingest service: catalog, event log, outbox, idempotency keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from shared.db import Connection
from shared.events import EventBase, dump_event

TENANT = "SELECT id, name, home_currency FROM tenants WHERE id = $1"

PRODUCT = """
SELECT sku, name, qbo_item_id, standard_cost, version, created_at, updated_at FROM catalog_products
WHERE tenant_id = $1 AND sku = $2"""
PRODUCTS = """
SELECT sku, name, qbo_item_id, standard_cost, version, created_at, updated_at FROM catalog_products
WHERE tenant_id = $1 AND sku > $2 ORDER BY sku LIMIT $3"""
INSERT_PRODUCT = """
INSERT INTO catalog_products (tenant_id, sku, name, qbo_item_id, standard_cost, version) VALUES ($1, $2, $3, $4, $5, 1)
ON CONFLICT (tenant_id, sku) DO NOTHING RETURNING version"""
# Why FOR UPDATE: versions of one product are assigned one at a time.
LOCK_PRODUCT = "SELECT version FROM catalog_products WHERE tenant_id = $1 AND sku = $2 FOR UPDATE"
UPDATE_PRODUCT = """
UPDATE catalog_products SET name = $3, qbo_item_id = $4, standard_cost = $5, version = version + 1, updated_at = now()
WHERE tenant_id = $1 AND sku = $2 RETURNING version"""

LOT = """
SELECT sku, lot_number, quantity, unit_cost, received_at, version, created_at, updated_at FROM catalog_lots
WHERE tenant_id = $1 AND sku = $2 AND lot_number = $3"""
INSERT_LOT = """
INSERT INTO catalog_lots (tenant_id, sku, lot_number, quantity, unit_cost, received_at, version)
VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (tenant_id, sku, lot_number) DO NOTHING RETURNING version"""
# Why FOR UPDATE: corrections of one lot get consecutive versions.
LOCK_LOT = LOT + " FOR UPDATE"
UPDATE_LOT = """
UPDATE catalog_lots SET quantity = $4, unit_cost = $5, version = version + 1, updated_at = now()
WHERE tenant_id = $1 AND sku = $2 AND lot_number = $3 RETURNING version"""

SALE = """
SELECT reference, type, status, version, entered_at, body FROM manual_sales WHERE tenant_id = $1 AND reference = $2"""
LOCK_SALE = SALE + " FOR UPDATE"
# The new sale (no row when its reference exists: version NULL) and the tenant's home
# currency (the event's exchange rate), in one round trip.
INSERT_SALE = """
WITH inserted AS (
    INSERT INTO manual_sales (tenant_id, reference, type, version, entered_at, body) VALUES ($1, $2, $3, 1, now(), $4)
    ON CONFLICT (tenant_id, reference) DO NOTHING RETURNING version, entered_at)
SELECT t.home_currency, i.version, i.entered_at FROM tenants t LEFT JOIN inserted i ON true WHERE t.id = $1"""
UPDATE_SALE = """
UPDATE manual_sales SET body = $3, version = version + 1, updated_at = now() WHERE tenant_id = $1 AND reference = $2
RETURNING version, entered_at"""
UPDATE_SALE_STATUS = """
UPDATE manual_sales SET status = $3, version = version + 1, updated_at = now() WHERE tenant_id = $1 AND reference = $2
RETURNING version"""

APPEND_EVENT = """
WITH logged AS (
    INSERT INTO event_log (event_id, tenant_id, event_type, source, occurred_at, correlation_id, body)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING seq)
INSERT INTO outbox (seq) SELECT seq FROM logged"""

IDEMPOTENT_RESPONSE = "SELECT request_hash, status, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2"
# Requests with the same key run one after the other: the transaction's advisory lock on
# the key. (Not in one statement with the read of its answer: that statement's snapshot
# would be taken before the lock is granted, and miss the answer the holder committed.)
LOCK_IDEMPOTENCY_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
SAVE_IDEMPOTENT_RESPONSE = """
INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, response) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key"""

# The relay: oldest unsent rows of every tenant first, locked for this transaction (SKIP
# LOCKED lets several relays share the outbox); through the one SECURITY DEFINER function
# that reads the log across tenants (0017_row_level_security.sql).
CLAIM_OUTBOX = "SELECT seq, event_id, tenant_id, event_type, correlation_id, body FROM outbox_claim($1)"
DELETE_OUTBOX = "DELETE FROM outbox WHERE seq = ANY($1::bigint[])"
OUTBOX_FAILED = "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = ANY($1::bigint[])"
OUTBOX_STATS = """
SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age FROM outbox"""

# Replay: the log in order, filtered.
LOG_RANGE = """
SELECT seq, event_id, tenant_id, event_type, correlation_id, body FROM event_log
WHERE seq > $1 AND ($2::uuid IS NULL OR tenant_id = $2) AND ($3::timestamptz IS NULL OR recorded_at >= $3)
  AND ($4::timestamptz IS NULL OR recorded_at < $4) AND ($5::text IS NULL OR source = $5)
  AND ($6::text[] IS NULL OR event_type = ANY($6))
ORDER BY seq LIMIT $7"""
LOG_COUNT = """
SELECT count(*) FROM event_log
WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::timestamptz IS NULL OR recorded_at >= $2)
  AND ($3::timestamptz IS NULL OR recorded_at < $3) AND ($4::text IS NULL OR source = $4)
  AND ($5::text[] IS NULL OR event_type = ANY($5))"""


class IngestRepository:
    def __init__(self, conn: Connection, tenant_id: uuid.UUID):
        self.conn = conn
        self.tenant_id = tenant_id

    async def tenant(self) -> asyncpg.Record | None:
        return await self.conn.fetchrow(TENANT, self.tenant_id)

    # catalog -------------------------------------------------------------------
    async def product(self, sku: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(PRODUCT, self.tenant_id, sku)

    async def products(self, after: str, limit: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(PRODUCTS, self.tenant_id, after, limit)

    async def insert_product(
        self, sku: str, name: str, qbo_item_id: str | None, standard_cost: Decimal | None
    ) -> int | None:
        version: int | None = await self.conn.fetchval(
            INSERT_PRODUCT, self.tenant_id, sku, name, qbo_item_id, standard_cost
        )
        return version

    async def lock_product(self, sku: str) -> int | None:
        version: int | None = await self.conn.fetchval(LOCK_PRODUCT, self.tenant_id, sku)
        return version

    async def update_product(self, sku: str, name: str, qbo_item_id: str | None, standard_cost: Decimal | None) -> int:
        version: int = await self.conn.fetchval(UPDATE_PRODUCT, self.tenant_id, sku, name, qbo_item_id, standard_cost)
        return version

    async def lot(self, sku: str, lot_number: str, lock: bool = False) -> asyncpg.Record | None:
        return await self.conn.fetchrow(LOCK_LOT if lock else LOT, self.tenant_id, sku, lot_number)

    async def insert_lot(
        self, sku: str, lot_number: str, quantity: Decimal, unit_cost: Decimal, received_at: datetime
    ) -> int | None:
        version: int | None = await self.conn.fetchval(
            INSERT_LOT, self.tenant_id, sku, lot_number, quantity, unit_cost, received_at
        )
        return version

    async def update_lot(self, sku: str, lot_number: str, quantity: Decimal, unit_cost: Decimal) -> int:
        version: int = await self.conn.fetchval(UPDATE_LOT, self.tenant_id, sku, lot_number, quantity, unit_cost)
        return version

    async def sale(self, reference: str, lock: bool = False) -> asyncpg.Record | None:
        return await self.conn.fetchrow(LOCK_SALE if lock else SALE, self.tenant_id, reference)

    async def insert_sale(self, reference: str, sale_type: str, body: dict[str, Any]) -> asyncpg.Record:
        """(home_currency, version, entered_at): version and entered_at NULL when the reference exists."""
        row = await self.conn.fetchrow(INSERT_SALE, self.tenant_id, reference, sale_type, body)
        if row is None:  # the request's tenant was authenticated in this transaction
            raise LookupError(f"no tenant {self.tenant_id}")
        return row

    async def update_sale(self, reference: str, body: dict[str, Any]) -> asyncpg.Record:
        """Call with the sale locked (``sale(reference, lock=True)`` found it)."""
        row = await self.conn.fetchrow(UPDATE_SALE, self.tenant_id, reference, body)
        if row is None:
            raise LookupError(f"no sale {reference!r} to update")
        return row

    async def update_sale_status(self, reference: str, status: str) -> int:
        version: int = await self.conn.fetchval(UPDATE_SALE_STATUS, self.tenant_id, reference, status)
        return version

    # event log -----------------------------------------------------------------
    async def append(self, event: EventBase, source: str) -> None:
        await self.conn.execute(
            APPEND_EVENT,
            event.event_id,
            event.tenant_id,
            event.routing_key,  # the event_type
            source,
            event.occurred_at,
            event.correlation_id,
            dump_event(event),
        )

    async def lock_idempotency_key(self, key: str) -> asyncpg.Record | None:
        """Lock the key for this transaction, then its stored answer (None: none yet)."""
        await self.conn.execute(LOCK_IDEMPOTENCY_KEY, f"idempotency:{self.tenant_id}:{key}")
        return await self.idempotent_response(key)

    async def idempotent_response(self, key: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(IDEMPOTENT_RESPONSE, self.tenant_id, key)

    async def save_idempotent_response(
        self, key: str, request_hash: bytes, status: int, response: dict[str, Any]
    ) -> bool:
        return (
            await self.conn.fetchval(SAVE_IDEMPOTENT_RESPONSE, self.tenant_id, key, request_hash, status, response)
            is not None
        )


class OutboxRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    async def claim(self, limit: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(CLAIM_OUTBOX, limit)

    async def sent(self, seqs: Sequence[int]) -> None:
        if seqs:
            await self.conn.execute(DELETE_OUTBOX, list(seqs))

    async def failed(self, seqs: Sequence[int], error: str) -> None:
        if seqs:
            await self.conn.execute(OUTBOX_FAILED, list(seqs), error[:1000])

    async def stats(self) -> asyncpg.Record:
        row = await self.conn.fetchrow(OUTBOX_STATS)
        if row is None:  # an aggregate without GROUP BY always returns a row
            raise LookupError("outbox stats returned no row")
        return row

    async def log_range(
        self,
        after_seq: int,
        tenant_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        source: str | None,
        event_types: list[str] | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        return await self.conn.fetch(LOG_RANGE, after_seq, tenant_id, since, until, source, event_types, limit)

    async def log_count(
        self,
        tenant_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        source: str | None,
        event_types: list[str] | None,
    ) -> int:
        count: int = await self.conn.fetchval(LOG_COUNT, tenant_id, since, until, source, event_types)
        return count
