"""The notification worker of one provider (the same code for every provider): takes
pending webhook notifications account ("realm") by account and
turns them into events. A realm with few pending notifications gets one read per
changed entity (deduplicated, in parallel within Intuit's limits); when they pile
up, one CDC call covers them all. Periodically, and on demand, every connected
realm is caught up with CDC from its watermark, which heals lost webhooks. A failed
catch-up (the watermark stays) is retried with exponential backoff (1 s, 2 s, 4 s …,
at most the catch-up interval); the connection shows the failure (last_error).

Several ingest processes share the work: notifications are claimed with SKIP LOCKED, and
a realm is caught up by one process at a time (a session advisory lock per realm, taken
with ``pg_try_advisory_lock``: a process that does not get it skips the realm). A periodic
catch-up is also skipped when another process completed one less than 0.9 intervals ago
(``last_synced_at``), so N processes make about one periodic catch-up per realm and
interval, not N (docs/operations.md, "Running several processes")."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from prometheus_client import Counter, Gauge

from services.ingest.channels.provider import ReconnectRequired, SalesChannelProvider
from services.ingest.channels.repository import ChannelRepository
from services.ingest.channels.sync import CatchUp, SyncReport, apply_item, apply_sale
from shared.aio import Backoff, wake_loop
from shared.db import tenant_transaction
from shared.logging import get_logger

MAX_ATTEMPTS = 10
BATCH = 5000
RETRY_BASE = 1.0  # seconds before the first retry of a failed catch-up, doubled per failure
#: Advisory lock key of a realm's catch-up: one process at a time per realm (``{key}``: the provider's).
CATCH_UP_LOCK = "partsemble.{key}.catch_up:"
#: A periodic catch-up is skipped if any process completed one within this share of the interval.
RECENT_SHARE = 0.9


@dataclass(frozen=True)
class _Metrics:
    handled: Counter
    backlog: Gauge
    catch_ups: Counter


_METRICS: dict[str, _Metrics] = {}


def metrics(key: str) -> _Metrics:
    """The provider's metrics (``qbo_notifications_handled_total`` … for QuickBooks)."""
    if key not in _METRICS:
        _METRICS[key] = _Metrics(
            Counter(f"{key}_notifications_handled_total", "Notifications handled by outcome", ["outcome"]),
            Gauge(f"{key}_notifications_pending", "Notifications waiting for the worker"),
            Counter(f"{key}_catch_ups_total", "Catch-ups by outcome", ["outcome"]),
        )
    return _METRICS[key]


class NotificationWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        provider: SalesChannelProvider,
        catch_up: CatchUp,
        coalesce_threshold: int,
        cdc_interval: float,
        on_events: Callable[[], None] = lambda: None,
    ):
        self.pool = pool
        self.provider = provider
        self.repo_provider = provider.name
        self.log = get_logger(f"{provider.key}.worker")
        self.metrics = metrics(provider.key)
        self.lock_prefix = CATCH_UP_LOCK.format(key=provider.key)
        self.catch_up = catch_up
        self.coalesce_threshold = coalesce_threshold
        self.cdc_interval = cdc_interval
        self.on_events = on_events
        self.wake = asyncio.Event()
        self._sync_requests: set[str] = set()
        self._runs: dict[str, list[uuid.UUID]] = defaultdict(list)  # realm → "sync now" runs waiting
        #: Realms of tenants not entitled to sales tracking at the last pass (their
        #: notifications stay pending, their catch-up waits until the tenant is entitled).
        self._waiting: set[str] = set()
        #: Realms being caught up right now (a connection shows ``syncing``).
        self.syncing: set[str] = set()
        self._last_catch_up = 0.0
        self._retry_at: dict[str, float] = {}  # realm → when its failed catch-up is tried again
        self._backoffs: dict[str, Backoff] = {}  # realm → the backoff of its failing catch-ups

    def notify(self) -> None:
        self.wake.set()

    def request_sync(self, realm_id: str, run_id: uuid.UUID | None = None) -> None:
        """Catch the realm up at the next pass; ``run_id``: the "sync now" run it fills in."""
        self._sync_requests.add(realm_id)
        if run_id is not None:
            self._runs[realm_id].append(run_id)
        self.wake.set()

    async def run(self) -> None:
        """Work until cancelled: at once while there is work, else when notified (or 1 s);
        1 s after a failed pass (the rows stay pending)."""
        await wake_loop(self.step, self.wake, idle_timeout=1.0, backoff=Backoff(1.0, 1.0), on_error=self._failed)

    def _failed(self, _exc: Exception, _retry_in: float) -> None:
        self.log.exception(f"{self.provider.key}.worker.failed")

    async def step(self) -> bool:
        """One pass: notifications of every realm, then due catch-ups. True if there was work."""
        async with self.pool.acquire() as conn:
            repo = ChannelRepository(conn, self.repo_provider)
            realms = await repo.pending_realms()
            connections = {r["realm_id"]: r for r in await repo.connected_realms()}
        self.metrics.backlog.set(sum(r["n"] for r in realms))
        # A tenant not entitled to sales tracking: its notifications stay pending and its
        # catch-up waits; both resume at the first pass after it is entitled (nothing lost).
        entitled = {realm for realm, c in connections.items() if c["sales_tracking"]}
        waiting = connections.keys() - entitled
        resumed = self._waiting - waiting
        self._waiting = set(waiting)
        realms = [r for r in realms if r["realm_id"] not in waiting]
        results = await asyncio.gather(
            *(self.handle_realm(r["realm_id"], r["n"], connections.get(r["realm_id"])) for r in realms),
            return_exceptions=True,
        )
        failures = 0
        for realm, result in zip(realms, results, strict=True):  # gather: one result per realm
            if isinstance(result, Exception):
                failures += 1
                self.log.warning(f"{self.provider.key}.worker.realm_failed", realm=realm["realm_id"], error=str(result))
        now = time.monotonic()
        due = now - self._last_catch_up >= self.cdc_interval
        backing_off = {realm for realm, at in self._retry_at.items() if at > now}
        first = {realm for realm, c in connections.items() if c["cdc_watermark"] is None and realm not in backing_off}
        retries = {realm for realm, at in self._retry_at.items() if at <= now} & connections.keys()
        requested = self._sync_requests & connections.keys()
        periodic = set(connections) - backing_off if due else set()
        # A tenant not entitled waits (its requests stay until it is); one entitled again resumes now.
        first, retries, requested, periodic = (group - waiting for group in (first, retries, requested, periodic))
        urgent = first | retries | requested | (resumed & connections.keys())
        self._sync_requests -= requested
        if due:
            self._last_catch_up = time.monotonic()
        for realm_id in sorted(urgent | periodic):
            await self._catch_up(realm_id, connections[realm_id]["tenant_id"], skip_if_recent=realm_id not in urgent)
        return len(realms) > failures  # only failures: wait before trying again

    async def _catch_up(self, realm_id: str, tenant_id: uuid.UUID, skip_if_recent: bool = False) -> None:
        """Catch the realm up unless another process is doing so (its advisory lock is held)
        or, with ``skip_if_recent``, did so less than RECENT_SHARE of an interval ago."""
        async with self.pool.acquire() as lock_conn:
            key = self.lock_prefix + realm_id
            if not await lock_conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
                self.metrics.catch_ups.labels("elsewhere").inc()
                if self._runs.get(realm_id):  # a Sync now of ours waits for the next pass
                    self._sync_requests.add(realm_id)
                return
            try:
                if skip_if_recent and await self._synced_recently(realm_id, tenant_id):
                    self.metrics.catch_ups.labels("recent").inc()
                    return
                await self._catch_up_now(realm_id, tenant_id)
            finally:
                with contextlib.suppress(Exception):  # a lost connection has released it already
                    await lock_conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)

    async def _synced_recently(self, realm_id: str, tenant_id: uuid.UUID) -> bool:
        async with tenant_transaction(self.pool, tenant_id, readonly=True) as conn:
            return bool(
                await conn.fetchval(
                    "SELECT last_synced_at > now() - make_interval(secs => $2) FROM qbo_connections"
                    " WHERE realm_id = $1 AND provider = $3",
                    realm_id,
                    self.cdc_interval * RECENT_SHARE,
                    self.repo_provider,
                )
            )

    async def _catch_up_now(self, realm_id: str, tenant_id: uuid.UUID) -> None:
        runs = self._runs.pop(realm_id, [])
        report = SyncReport()
        self.syncing.add(realm_id)
        try:
            count = await self.catch_up.run(realm_id, tenant_id, report=report)
        except ReconnectRequired:
            self.metrics.catch_ups.labels("reconnect_required").inc()
            self.log.error(f"{self.provider.key}.catch_up.reconnect_required", realm=realm_id)
            await self._finish_runs(tenant_id, runs, "failed", report, "reconnect_required")
            return
        except Exception as exc:
            await self._finish_runs(tenant_id, runs, "failed", report, type(exc).__name__)
            self.metrics.catch_ups.labels("failed").inc()
            backoff = self._backoffs.setdefault(realm_id, Backoff(RETRY_BASE, self.cdc_interval))
            delay = backoff.next_delay()
            self._retry_at[realm_id] = time.monotonic() + delay
            self.log.exception(
                f"{self.provider.key}.catch_up.failed", realm=realm_id, failures=backoff.failures, retry_in=delay
            )
            return
        finally:
            self.syncing.discard(realm_id)
        await self._finish_runs(tenant_id, runs, "done", report, None)
        self.metrics.catch_ups.labels("done").inc()
        self._backoffs.pop(realm_id, None)
        self._retry_at.pop(realm_id, None)
        if count:
            self.on_events()
        self.log.info(f"{self.provider.key}.catch_up.done", realm=realm_id, events=count)

    async def _finish_runs(
        self, tenant_id: uuid.UUID, runs: list[uuid.UUID], status: str, report: SyncReport, error: str | None
    ) -> None:
        if not runs:
            return
        try:
            async with tenant_transaction(self.pool, tenant_id) as conn:
                await ChannelRepository(conn, self.repo_provider).finish_runs(runs, status, report, error)
        except Exception:
            self.log.exception(f"{self.provider.key}.sync_run.not_recorded", runs=[str(r) for r in runs])

    async def handle_realm(self, realm_id: str, pending: int, connection: asyncpg.Record | None) -> None:
        async with self.pool.acquire() as conn:
            claimed = await ChannelRepository(conn, self.repo_provider).claim(
                realm_id, BATCH if pending > self.coalesce_threshold else self.coalesce_threshold
            )
        if not claimed:
            return
        if connection is None:
            await self._finish([r["id"] for r in claimed], "ignored", "realm not connected")
            self.metrics.handled.labels("ignored").inc(len(claimed))
            return
        tenant_id = connection["tenant_id"]
        try:
            covered = (
                await self._by_cdc(realm_id, tenant_id, claimed) if len(claimed) > self.coalesce_threshold else set()
            )
            await self._finish(sorted(covered))
            await self._by_reads(realm_id, tenant_id, [r for r in claimed if r["id"] not in covered])
        except Exception as exc:
            await self._retry_later([r["id"] for r in claimed], f"{type(exc).__name__}: {exc}")
            raise
        self.metrics.handled.labels("done").inc(len(claimed))
        self.on_events()

    async def _finish(self, ids: Sequence[int], status: str = "done", error: str | None = None) -> None:
        async with self.pool.acquire() as conn:
            await ChannelRepository(conn, self.repo_provider).finish(ids, status, error)

    async def _retry_later(self, ids: Sequence[int], error: str) -> None:
        async with self.pool.acquire() as conn:
            await ChannelRepository(conn, self.repo_provider).retry_later(ids, error, MAX_ATTEMPTS)

    async def _by_cdc(self, realm_id: str, tenant_id: uuid.UUID, claimed: list[asyncpg.Record]) -> set[int]:
        """One CDC call for a pile of notifications; returns the ids it covered."""
        since = (
            min(r["occurred_at"] for r in claimed if r["occurred_at"]) - timedelta(minutes=2)
            if any(r["occurred_at"] for r in claimed)
            else None
        )
        voids = {(r["entity"], r["entity_id"]) for r in claimed if r["operation"] == "Void"}
        await self.catch_up.run(realm_id, tenant_id, since, voids)
        self.log.info(f"{self.provider.key}.coalesced", realm=realm_id, notifications=len(claimed))
        covered = (*self.provider.sales_entities, self.provider.item_entity)
        return {r["id"] for r in claimed if r["entity"] in covered and r["operation"] != "Merge"}

    async def _by_reads(self, realm_id: str, tenant_id: uuid.UUID, claimed: list[asyncpg.Record]) -> None:
        by_entity: defaultdict[tuple[str, str], list[asyncpg.Record]] = defaultdict(list)
        for r in claimed:
            by_entity[(r["entity"], r["entity_id"])].append(r)
        results = await asyncio.gather(
            *(
                self._one(realm_id, tenant_id, entity, entity_id, rows)
                for (entity, entity_id), rows in by_entity.items()
            ),
            return_exceptions=True,
        )
        for rows, result in zip(by_entity.values(), results, strict=True):  # gather: one result per entity
            ids = [r["id"] for r in rows]
            if isinstance(result, ReconnectRequired):
                raise result
            if isinstance(result, BaseException):
                self.log.warning(
                    f"{self.provider.key}.notification.retry",
                    entity=rows[0]["entity"],
                    id=rows[0]["entity_id"],
                    error=str(result),
                )
                await self._retry_later(ids, f"{type(result).__name__}: {result}")
            else:
                await self._finish(ids, result)

    async def _one(
        self, realm_id: str, tenant_id: uuid.UUID, entity: str, entity_id: str, rows: list[asyncpg.Record]
    ) -> str:
        """Read one entity (once, however many notifications name it) and apply it."""
        operations = {r["operation"] for r in rows}
        provider = self.provider
        if entity in provider.sales_entities:
            body = None if "Delete" in operations else await provider.read(realm_id, entity, entity_id)
            async with tenant_transaction(self.pool, tenant_id) as conn:
                await apply_sale(
                    conn,
                    provider,
                    tenant_id,
                    realm_id,
                    entity,
                    entity_id,
                    body,
                    "Void" if "Void" in operations else None,
                )
            return "done"
        if entity == provider.item_entity:
            merged = next((r["deleted_id"] for r in rows if r["operation"] == "Merge" and r["deleted_id"]), None)
            body = None if "Delete" in operations else await provider.read(realm_id, entity, entity_id)
            async with tenant_transaction(self.pool, tenant_id) as conn:
                if merged:  # deleted_id was merged into entity_id
                    await apply_item(conn, provider, tenant_id, realm_id, None, merged, merged_into=entity_id)
                await apply_item(conn, provider, tenant_id, realm_id, body, entity_id)
            return "done"
        return "ignored"
