"""Turning a provider's entities into events, one entity at a time under its row lock
(the same for every provider): a version not newer than the one already turned into
events is skipped, a delete is terminal, a void is terminal. Items keep the
item→product mapping current; a mapping change re-emits the sales it affects (same
version, next remap sequence). Catch-up reads the provider's change feed from a stored
watermark and moves the watermark only when everything was applied."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from services.ingest.channels.mapping import Item, ItemMapper, Product
from services.ingest.channels.provider import SalesChannelProvider
from services.ingest.channels.repository import ChannelRepository
from services.ingest.repository import IngestRepository
from shared.db import Connection, tenant_transaction
from shared.events import EventBase
from shared.logging import get_logger

log = get_logger("channels.sync")
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
    return f"qbo-mapping:{tenant_id}"  # one lock per tenant for every provider (historical name)


async def load_mapper(
    conn: Connection, provider: SalesChannelProvider, tenant_id: uuid.UUID, realm_id: str
) -> ItemMapper:
    repo = ChannelRepository(conn, provider.name)
    products = [Product(r["sku"], r["name"], r["item_id"]) for r in await repo.catalog(tenant_id)]
    items = {
        r["item_id"]: Item(r["item_id"], r["name"], r["sku"], r["type"], r["merged_into"], r["fully_qualified_name"])
        for r in await repo.items(realm_id)
    }
    return provider.mapper(products, items)


async def lock_mapping(conn: Connection, tenant_id: uuid.UUID, exclusive: bool) -> None:
    """Sales read the mapping under a shared lock; changes of it take the exclusive
    lock, so a re-map never misses a sale being turned into an event meanwhile."""
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(f"SELECT {fn}(hashtextextended($1, 0))", _mapping_lock(tenant_id))


async def apply_sale(
    conn: Connection,
    provider: SalesChannelProvider,
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
    if body is not None and not provider.is_sale(entity, body):
        outcome("skipped")  # not a sale (yet): nothing recorded, a later version may be one
        return []
    await lock_mapping(conn, tenant_id, exclusive=False)
    repo = ChannelRepository(conn, provider.name)
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
        return await _emit(conn, provider, tenant_id, provider.removed(tenant_id, entity, entity_id))
    token = provider.version(body)
    voided = state["voided"] or provider.is_voided(body, operation)
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
            provider,
            tenant_id,
            provider.to_event(
                tenant_id, entity, state["body"] or body, provider.mapper([], {}), state["remap_seq"], "Void"
            ),
        )
    outcome("voided" if voided else "created" if state["sync_token"] is None else "updated")
    mapper = await load_mapper(conn, provider, tenant_id, realm_id)
    event = provider.to_event(tenant_id, entity, body, mapper, 0, "Void" if voided else None)
    await repo.store_entity(
        realm_id,
        entity,
        entity_id,
        token,
        0,
        False,
        body,
        provider.item_ids(body),
        provider.last_updated(body),
        voided=voided,
    )
    ids: list[str] = []
    if event.event_type == "sale.removed" and state["sync_token"] is None:
        # First seen already voided: record what QuickBooks keeps of it (date, number, customer), then the void.
        ids += await _emit(conn, provider, tenant_id, provider.upserted(tenant_id, entity, body, mapper))
    return ids + await _emit(conn, provider, tenant_id, event)


async def apply_item(
    conn: Connection,
    provider: SalesChannelProvider,
    tenant_id: uuid.UUID,
    realm_id: str,
    item: dict[str, Any] | None,
    item_id: str,
    merged_into: str | None = None,
) -> list[str]:
    """Keep the item cache current; re-emit the sales whose mapping it changes."""
    await lock_mapping(conn, tenant_id, exclusive=True)
    before = await load_mapper(conn, provider, tenant_id, realm_id)
    repo = ChannelRepository(conn, provider.name)
    if item is not None:
        version = provider.item(item)
        await repo.upsert_item(
            realm_id,
            version.item.item_id,
            version.item.name,
            version.item.sku,
            version.item.type,
            version.active,
            version.version,
            fully_qualified_name=version.item.fully_qualified_name,
        )
    if merged_into:
        await repo.merge_item(realm_id, item_id, merged_into)
    after = await load_mapper(conn, provider, tenant_id, realm_id)
    return await remap(conn, provider, tenant_id, realm_id, before, after, extra_items={item_id})


async def remap(
    conn: Connection,
    provider: SalesChannelProvider,
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
    repo = ChannelRepository(conn, provider.name)
    event_ids: list[str] = []
    for row in await repo.sales_with_items(realm_id, changed):
        state = await repo.lock_entity(realm_id, row["entity"], row["entity_id"])
        if state["deleted"] or state["body"] is None:
            continue
        seq = state["remap_seq"] + 1
        event = provider.to_event(
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
        event_ids += await _emit(conn, provider, tenant_id, event)
    log.info(f"{provider.key}.remapped", realm=realm_id, items=changed, sales=len(event_ids))
    return event_ids


async def remap_tenant(
    conn: Connection,
    tenant_id: uuid.UUID,
    change: Callable[[Connection], Awaitable[T]],
    providers: Iterable[SalesChannelProvider],
) -> T:
    """Run a catalog change (``change(conn)``) and re-emit every provider's sales it re-maps."""
    accounts = [
        (provider, realm)
        for provider in providers
        for realm in await ChannelRepository(conn, provider.name).realms_of(tenant_id)
    ]
    if not accounts:
        return await change(conn)
    await lock_mapping(conn, tenant_id, exclusive=True)
    befores = [await load_mapper(conn, provider, tenant_id, realm) for provider, realm in accounts]
    result = await change(conn)
    for (provider, realm), before in zip(accounts, befores, strict=True):  # one mapper per account
        await remap(conn, provider, tenant_id, realm, before, await load_mapper(conn, provider, tenant_id, realm))
    return result


class RemapOnCatalogChange:
    """The channels' catalog listener (``services.ingest.service.CatalogListener``): a
    catalog change may re-map items of any provider, so it re-emits the sales it affects."""

    def __init__(self, providers: Iterable[SalesChannelProvider]):
        self.providers = list(providers)

    async def around_catalog_change(
        self, conn: Connection, tenant_id: uuid.UUID, change: Callable[[], Awaitable[T]]
    ) -> T:
        return await remap_tenant(conn, tenant_id, lambda _conn: change(), self.providers)


async def _emit(conn: Connection, provider: SalesChannelProvider, tenant_id: uuid.UUID, event: EventBase) -> list[str]:
    await IngestRepository(conn, tenant_id).append(event, provider.name)
    return [str(event.event_id)]


class CatchUp:
    """Reads what changed in an account since its watermark and turns it into events."""

    def __init__(self, pool: asyncpg.Pool, provider: SalesChannelProvider, initial_days: int):
        self.pool = pool
        self.provider = provider
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
                    await ChannelRepository(conn, self.provider.name).sync_failed(
                        realm_id, f"{type(exc).__name__}: {exc}"
                    )
            except Exception:
                log.exception(f"{self.provider.key}.sync_status.failed", realm=realm_id)
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
                row = await ChannelRepository(conn, self.provider.name).connection(realm_id)
            since = (
                (row["cdc_watermark"] - OVERLAP)
                if row and row["cdc_watermark"]
                else now - timedelta(days=self.initial_days)
            )
        feed = await self.provider.changes_since(realm_id, since)
        count = await self.apply_changes(realm_id, tenant_id, feed.changed, voids, report)
        async with tenant_transaction(self.pool, tenant_id) as conn:
            await ChannelRepository(conn, self.provider.name).advance_watermark(realm_id, feed.server_time)
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
        provider = self.provider
        count = 0
        for entity in provider.feed_entities:
            for body in changed.get(entity) or []:
                deleted = provider.is_deletion(body)
                entity_id = provider.entity_id(body)
                outcomes: list[str] = []
                try:
                    async with tenant_transaction(self.pool, tenant_id) as conn:
                        if entity == provider.item_entity:
                            ids = await apply_item(
                                conn, provider, tenant_id, realm_id, None if deleted else body, entity_id
                            )
                        else:
                            ids = await apply_sale(
                                conn,
                                provider,
                                tenant_id,
                                realm_id,
                                entity,
                                entity_id,
                                None if deleted else body,
                                "Void" if (entity, entity_id) in voids else None,
                                outcome=outcomes.append,
                            )
                except Exception:
                    if entity != provider.item_entity:
                        report.failed += 1
                    raise
                for outcome in outcomes:  # only once committed
                    report.add(outcome, entity, entity_id)
                count += len(ids)
        return count
