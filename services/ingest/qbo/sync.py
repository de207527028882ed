"""Turning QuickBooks entities into events, one entity at a time under its row
lock: a SyncToken not newer than the one already turned into events is skipped,
a delete is terminal. Items keep the item→product mapping current; a mapping
change re-emits the sales it affects (same SyncToken, next remap sequence).
Catch-up reads changes with CDC (≤ 30 days, ≤ 1000 objects: when full, the query
endpoint completes it) from a stored watermark."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from services.ingest.qbo import normalize
from services.ingest.qbo.client import QboClient
from services.ingest.qbo.deliveries import parse_time
from services.ingest.qbo.mapping import Item, ItemMapper, Product
from services.ingest.qbo.repository import QboRepository
from services.ingest.repository import IngestRepository
from shared.db import Connection, tenant_transaction
from shared.events import EventBase
from shared.logging import get_logger

log = get_logger("qbo.sync")
SALES_ENTITIES = ("Invoice", "SalesReceipt", "CreditMemo")
CDC_ENTITIES = ["Item", *SALES_ENTITIES]
CDC_LIMIT = 1000
OVERLAP = timedelta(minutes=5)  # re-read a little before the watermark: clocks and commit delays
T = TypeVar("T")


@dataclass
class SyncReport:
    """What one catch-up did to the sales it read (a "sync now" run shows it):
    'Entity:Id' of each sale created, updated, voided or deleted; how many were skipped
    (not newer than what was already turned into events) and failed."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: int = 0

    def add(self, outcome: str, entity: str, entity_id: str) -> None:
        if outcome == "skipped":
            self.skipped += 1
        else:
            getattr(self, outcome).append(f"{entity}:{entity_id}")


Outcome = Callable[[str], None]


def _ignore(_outcome: str) -> None:
    pass


def _mapping_lock(tenant_id: uuid.UUID) -> str:
    return f"qbo-mapping:{tenant_id}"


async def load_mapper(conn: Connection, tenant_id: uuid.UUID, realm_id: str) -> ItemMapper:
    repo = QboRepository(conn)
    products = [Product(r["sku"], r["name"], r["qbo_item_id"]) for r in await repo.catalog(tenant_id)]
    items = {
        r["item_id"]: Item(r["item_id"], r["name"], r["sku"], r["type"], r["merged_into"], r["fully_qualified_name"])
        for r in await repo.items(realm_id)
    }
    return ItemMapper(products, items)


async def lock_mapping(conn: Connection, tenant_id: uuid.UUID, exclusive: bool) -> None:
    """Sales read the mapping under a shared lock; changes of it take the exclusive
    lock, so a re-map never misses a sale being turned into an event meanwhile."""
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(f"SELECT {fn}(hashtextextended($1, 0))", _mapping_lock(tenant_id))


async def apply_sale(
    conn: Connection,
    tenant_id: uuid.UUID,
    realm_id: str,
    entity: str,
    entity_id: str,
    body: dict[str, Any] | None,
    operation: str | None = None,
    outcome: Outcome = _ignore,
) -> list[str]:
    """Turn one sales entity (None: deleted) into its event, if newer. Call in a transaction.
    ``outcome`` is told what became of it: created, updated, voided, deleted or skipped.

    A void is terminal and does not depend on the read-back: ``operation == "Void"`` (a
    webhook, or a CDC pass covering one), the entity's ``Voided`` marker, or a zeroed
    read-back marks the entity voided for good. A Void whose read-back is not newer than
    what was already turned into events (a stale read) still removes the sale."""
    await lock_mapping(conn, tenant_id, exclusive=False)
    repo = QboRepository(conn)
    state = await repo.lock_entity(realm_id, entity, entity_id)
    if state["deleted"]:
        outcome("skipped")
        return []
    if body is None:
        outcome("deleted")
        await repo.store_entity(
            realm_id,
            entity,
            entity_id,
            state["sync_token"],
            state["remap_seq"],
            True,
            state["body"],
            state["item_ids"],
            datetime.now(UTC),
        )
        return await _emit(conn, tenant_id, normalize.removed(tenant_id, entity, entity_id))
    token = int(body.get("SyncToken", 0))
    voided = state["voided"] or normalize.is_voided(body, operation)
    if state["sync_token"] is not None and token <= state["sync_token"]:
        if not voided or state["voided"]:
            outcome("skipped")
            return []
        # A Void whose read-back is not newer (stale): the void still stands.
        outcome("voided")
        await repo.store_entity(
            realm_id,
            entity,
            entity_id,
            state["sync_token"],
            state["remap_seq"],
            False,
            state["body"],
            state["item_ids"],
            state["last_updated"],
            voided=True,
        )
        return await _emit(
            conn,
            tenant_id,
            normalize.to_event(
                tenant_id, entity, state["body"] or body, ItemMapper([], {}), state["remap_seq"], "Void"
            ),
        )
    outcome("voided" if voided else "created" if state["sync_token"] is None else "updated")
    mapper = await load_mapper(conn, tenant_id, realm_id)
    event = normalize.to_event(tenant_id, entity, body, mapper, 0, "Void" if voided else None)
    await repo.store_entity(
        realm_id,
        entity,
        entity_id,
        token,
        0,
        False,
        body,
        normalize.item_ids(body),
        parse_time((body.get("MetaData") or {}).get("LastUpdatedTime")),
        voided=voided,
    )
    ids: list[str] = []
    if event.event_type == "sale.removed" and state["sync_token"] is None:
        # First seen already voided: record what QuickBooks keeps of it (date, number, customer), then the void.
        ids += await _emit(conn, tenant_id, normalize.upserted(tenant_id, entity, body, mapper))
    return ids + await _emit(conn, tenant_id, event)


async def apply_item(
    conn: Connection,
    tenant_id: uuid.UUID,
    realm_id: str,
    item: dict[str, Any] | None,
    item_id: str,
    merged_into: str | None = None,
) -> list[str]:
    """Keep the item cache current; re-emit the sales whose mapping it changes."""
    await lock_mapping(conn, tenant_id, exclusive=True)
    before = await load_mapper(conn, tenant_id, realm_id)
    repo = QboRepository(conn)
    if item is not None:
        await repo.upsert_item(
            realm_id,
            str(item["Id"]),
            item.get("Name"),
            item.get("Sku"),
            item.get("Type"),
            bool(item.get("Active", True)),
            int(item.get("SyncToken", 0)),
            fully_qualified_name=item.get("FullyQualifiedName"),
        )
    if merged_into:
        await repo.merge_item(realm_id, item_id, merged_into)
    return await remap(
        conn, tenant_id, realm_id, before, await load_mapper(conn, tenant_id, realm_id), extra_items={item_id}
    )


async def remap(
    conn: Connection,
    tenant_id: uuid.UUID,
    realm_id: str,
    before: ItemMapper,
    after: ItemMapper,
    extra_items: AbstractSet[str] = frozenset(),
) -> list[str]:
    """Re-emit every sale that names an item whose mapping differs between the two mappers."""
    candidates = (
        set(before.items)
        | set(after.items)
        | set(extra_items)
        | {i for m in (before, after) for i in m.mapped_item_ids()}
    )
    changed = sorted(i for i in candidates if before.map(i) != after.map(i))
    if not changed:
        return []
    repo = QboRepository(conn)
    event_ids: list[str] = []
    for row in await repo.sales_with_items(realm_id, changed):
        state = await repo.lock_entity(realm_id, row["entity"], row["entity_id"])
        if state["deleted"] or state["body"] is None:
            continue
        seq = state["remap_seq"] + 1
        event = normalize.to_event(
            tenant_id, row["entity"], state["body"], after, seq, "Void" if state["voided"] else None
        )
        await repo.store_entity(
            realm_id,
            row["entity"],
            row["entity_id"],
            state["sync_token"],
            seq,
            False,
            state["body"],
            state["item_ids"],
            state["last_updated"],
        )
        event_ids += await _emit(conn, tenant_id, event)
    log.info("qbo.remapped", realm=realm_id, items=changed, sales=len(event_ids))
    return event_ids


async def remap_tenant(conn: Connection, tenant_id: uuid.UUID, change: Callable[[Connection], Awaitable[T]]) -> T:
    """Run a catalog change (``change(conn)``) and re-emit the QuickBooks sales it re-maps."""
    realms = await QboRepository(conn).realms_of(tenant_id)
    if not realms:
        return await change(conn)
    await lock_mapping(conn, tenant_id, exclusive=True)
    befores = {realm: await load_mapper(conn, tenant_id, realm) for realm in realms}
    result = await change(conn)
    for realm in realms:
        await remap(conn, tenant_id, realm, befores[realm], await load_mapper(conn, tenant_id, realm))
    return result


class RemapOnCatalogChange:
    """The QuickBooks channel's catalog listener (``services.ingest.service.CatalogListener``):
    a catalog change may re-map QuickBooks items, so it re-emits the sales it affects."""

    async def around_catalog_change(
        self, conn: Connection, tenant_id: uuid.UUID, change: Callable[[], Awaitable[T]]
    ) -> T:
        return await remap_tenant(conn, tenant_id, lambda _conn: change())


async def _emit(conn: Connection, tenant_id: uuid.UUID, event: EventBase) -> list[str]:
    await IngestRepository(conn, tenant_id).append(event, "quickbooks")
    return [str(event.event_id)]


class CatchUp:
    """Reads what changed in a realm since its watermark and turns it into events."""

    def __init__(self, pool: asyncpg.Pool, client: QboClient, initial_days: int):
        self.pool = pool
        self.client = client
        self.initial_days = initial_days

    async def run(
        self,
        realm_id: str,
        tenant_id: uuid.UUID,
        since: datetime | None = None,
        voids: AbstractSet[tuple[str, str]] = frozenset(),
        report: SyncReport | None = None,
    ) -> int:
        """Catch the realm up; the watermark moves only when everything was read and applied.
        ``report``: filled in with what became of each sale read.
        A failure (QuickBooks unreachable, a Fault, even one answered with HTTP 200) is
        recorded on the connection (last_error, last_error_at, sync_failures) and raised.
        ``voids``: (entity, id) pairs a Void notification names (passed on to apply_sale)."""
        try:
            return await self._run(realm_id, tenant_id, since, voids, report or SyncReport())
        except Exception as exc:
            try:
                async with tenant_transaction(self.pool, tenant_id) as conn:
                    await QboRepository(conn).sync_failed(realm_id, f"{type(exc).__name__}: {exc}")
            except Exception:
                log.exception("qbo.sync_status.failed", realm=realm_id)
            raise

    async def _run(
        self,
        realm_id: str,
        tenant_id: uuid.UUID,
        since: datetime | None,
        voids: AbstractSet[tuple[str, str]],
        report: SyncReport,
    ) -> int:
        now = datetime.now(UTC)
        if since is None:
            async with tenant_transaction(self.pool, tenant_id, readonly=True) as conn:
                row = await QboRepository(conn).connection(realm_id)
            since = (
                (row["cdc_watermark"] - OVERLAP)
                if row and row["cdc_watermark"]
                else now - timedelta(days=self.initial_days)
            )
        server_time = now
        if now - since < timedelta(days=30):
            changed, time_text = await self.client.cdc(realm_id, CDC_ENTITIES, since)
            server_time = parse_time(time_text) or now
            if sum(len(v) for v in changed.values()) >= CDC_LIMIT:  # full: complete it with the query endpoint
                log.info("qbo.cdc.full", realm=realm_id, since=since.isoformat())
                for entity in CDC_ENTITIES:
                    changed[entity] = _newest(
                        changed[entity] + await self.client.query_changed(realm_id, entity, since)
                    )
        else:  # beyond CDC's reach: the query endpoint (which does not report deletions)
            changed = {e: await self.client.query_changed(realm_id, e, since) for e in CDC_ENTITIES}
        count = await self.apply_changes(realm_id, tenant_id, changed, voids, report)
        async with tenant_transaction(self.pool, tenant_id) as conn:
            await QboRepository(conn).advance_watermark(realm_id, server_time)
        return count

    async def apply_changes(
        self,
        realm_id: str,
        tenant_id: uuid.UUID,
        changed: dict[str, list[dict[str, Any]]],
        voids: AbstractSet[tuple[str, str]] = frozenset(),
        report: SyncReport | None = None,
    ) -> int:
        """Items first (so the mapping is current), then sales; CDC's deleted stubs become deletions.
        A sale that fails counts in ``report.failed`` and stops the catch-up (raised)."""
        report = report if report is not None else SyncReport()
        count = 0
        for entity in CDC_ENTITIES:
            for body in changed.get(entity) or []:
                deleted = str(body.get("status", "")).lower() == "deleted"
                entity_id = str(body["Id"])
                outcomes: list[str] = []
                try:
                    async with tenant_transaction(self.pool, tenant_id) as conn:
                        if entity == "Item":
                            ids = await apply_item(conn, tenant_id, realm_id, None if deleted else body, entity_id)
                        else:
                            ids = await apply_sale(
                                conn,
                                tenant_id,
                                realm_id,
                                entity,
                                entity_id,
                                None if deleted else body,
                                "Void" if (entity, entity_id) in voids else None,
                                outcome=outcomes.append,
                            )
                except Exception:
                    if entity != "Item":
                        report.failed += 1
                    raise
                for outcome in outcomes:  # only once committed
                    report.add(outcome, entity, entity_id)
                count += len(ids)
        return count


def _newest(bodies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for body in bodies:
        current = by_id.get(str(body["Id"]))
        if current is None or int(body.get("SyncToken", -1)) > int(current.get("SyncToken", -1)):
            by_id[str(body["Id"])] = body
    return list(by_id.values())
