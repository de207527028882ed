"""Rebuild one tenant's costing state from its event log.

    python -m services.costing.rebuild --tenant ID            # in process, set-based batches (default)
    python -m services.costing.rebuild --tenant ID --replay   # reset, then publish the log through the broker

Both reset the tenant's costing state first and reach the same state the live engine
holds (costing is idempotent and order-independent; tests/integration/
test_costing_rebuild.py compares the canonical projections).

The default path plans the order of application once (session temp tables), then
applies the log in process, without the broker, knowing every fact up
front: products, then lots, then each sale's strongest removal, then each sale's latest
version in demand order, in groups of ``--batch`` sales per transaction. In demand order
every new sale lands at the end of its products' demand axes, with every lot already in
supply: a group's new invoices and sales receipts are costed in memory with the engine's
pure functions and written costed, a few set-based statements for all of the group's
products (``append.py``); its credit memos (their return lots enter the middle of supply)
and the sales a removal created go through the engine's group apply first, in the same
transaction. The other events of the log (older versions, weaker removals) are then recorded in
the inbox and the sales' version history as the engine records a stale event (no effect).
Events logged while the rebuild runs are applied by the live consumers as usual.
After a reset that deleted many rows it VACUUMs the tables it emptied (the deleted state's
dead rows would otherwise lie in every index the engine probes), and it ANALYZEs them as
they grow (their plans must not depend on someone having analyzed them) and at the end.

Connects as the schema owner (DATABASE_OWNER_URL) like the other operator commands;
every transaction it runs is scoped to the tenant. Progress: a bar on a terminal, a
log line every few seconds otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg
from aio_pika.abc import AbstractExchange
from pydantic import ValidationError
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm has no type hints; types-tqdm is not a dependency

from services.costing.append import apply_group_appending
from services.costing.repository.sql_totals import COSTING_TABLES, RESET_TABLES
from services.costing.service import CostingService, groups
from services.ingest.operator import pool_and_topology, run_command
from services.ingest.replay import Selection, replay
from shared.db import Connection, create_pool, set_tenant
from shared.events import Event, parse_event
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("costing.rebuild")

#: Sales applied per transaction by the in-process rebuild.
BATCH = 1000
#: Events fetched from the log per round trip.
FETCH = 2000
#: A reset that deleted at least this many rows is followed by a VACUUM of the tables it emptied.
VACUUM_AFTER_ROWS = 100_000
#: Sales after which the sales phase first ANALYZEs (then at 4×, 16×, ...): right after a
#: VACUUM the planner's row counts are the emptied tables'.
FIRST_ANALYZE_SALES = 1_000

_SALE_KEY = "j->>'source', j->>'sale_type', j->>'external_id'"
_BODY = "FROM event_log e, LATERAL (SELECT convert_from(e.body, 'UTF8')::jsonb AS j) b WHERE e.tenant_id = $1"
# The plan, made once at the start in session temp tables (n: the order of application), then
# read in short keyset-paged statements: no snapshot is held while the rebuild writes (a
# snapshot held for minutes keeps every old version of the product and lot rows the engine
# updates group after group, and each probe of them walks longer and longer chains).
# Each sale's latest version (the highest version, the last logged among equals), in demand
# order (services/costing/order.py, DEMAND_ORDER; line_no aside).
PLAN_UPSERTS = f"""
CREATE TEMP TABLE rebuild_upserts AS
SELECT row_number() OVER (ORDER BY txn_date, source_created_at, source, length(external_id), external_id, sale_type)
       AS n, seq
FROM (SELECT DISTINCT ON ({_SALE_KEY}) e.seq, (j->>'txn_date')::date AS txn_date,
             (j->>'source_created_at')::timestamptz AS source_created_at, j->>'source' AS source,
             j->>'external_id' AS external_id, j->>'sale_type' AS sale_type
      {_BODY} AND e.event_type = 'sale.upserted'
      ORDER BY {_SALE_KEY}, (j->>'version')::bigint DESC, e.seq DESC) latest"""
# Each sale's strongest removal (deleted over voided, the first logged among equals).
PLAN_REMOVALS = f"""
CREATE TEMP TABLE rebuild_removals AS
SELECT row_number() OVER (ORDER BY seq) AS n, seq
FROM (SELECT DISTINCT ON ({_SALE_KEY}) e.seq {_BODY} AND e.event_type = 'sale.removed'
      ORDER BY {_SALE_KEY}, (j->>'reason' = 'deleted') DESC, e.seq) strongest"""
# Products, then lots, in log order.
PLAN_CATALOG = """
CREATE TEMP TABLE rebuild_catalog AS
SELECT row_number() OVER (ORDER BY event_type <> 'product.upserted', seq) AS n, seq FROM event_log
WHERE tenant_id = $1 AND event_type IN ('product.upserted', 'lot.received', 'lot.corrected')"""
# The other sale events (older versions, weaker removals), in log order.
PLAN_REST = """
CREATE TEMP TABLE rebuild_rest AS
SELECT row_number() OVER (ORDER BY e.seq) AS n, e.seq FROM event_log e
WHERE e.tenant_id = $1 AND e.event_type IN ('sale.upserted', 'sale.removed')
  AND NOT EXISTS (SELECT FROM rebuild_upserts r WHERE r.seq = e.seq)
  AND NOT EXISTS (SELECT FROM rebuild_removals r WHERE r.seq = e.seq)"""
PLAN_TABLES = ("rebuild_catalog", "rebuild_removals", "rebuild_upserts", "rebuild_rest")
PAGE = "SELECT r.n, e.body FROM {table} r JOIN event_log e USING (seq) WHERE r.n > $1 ORDER BY r.n LIMIT $2"


@dataclass
class RebuildStats:
    events: int = 0
    applied: int = 0
    duplicates: int = 0
    failed: int = 0
    sales: int = 0
    #: Sales the sales phase appended in memory (append.py); the others went through the engine.
    appended: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


class _Progress:
    """A bar on a terminal, else an INFO line every ``every`` seconds."""

    def __init__(self, total: int, show_bar: bool, every: float = 5.0):
        self.total, self.done, self.every = total, 0, every
        self.started = self._last = time.monotonic()
        self.bar = tqdm(total=total, unit="event", disable=not show_bar)
        self.show_bar = show_bar

    def update(self, n: int, phase: str) -> None:
        self.done += n
        self.bar.update(n)
        now = time.monotonic()
        if not self.show_bar and now - self._last >= self.every:
            self._last = now
            rate = self.done / max(now - self.started, 1e-9)
            log.info("rebuild.progress", phase=phase, events=self.done, total=self.total, per_second=round(rate))

    def close(self) -> None:
        self.bar.close()


async def analyze(pool: asyncpg.Pool, tables: tuple[str, ...] = COSTING_TABLES) -> None:
    """Fresh statistics for the costing tables, which the rebuild fills (after a bulk
    operation; autovacuum may be off or behind, and the engine's plans must not depend on it)."""
    async with pool.acquire() as conn:
        await conn.execute(f"ANALYZE {', '.join(tables)}")


async def vacuum(pool: asyncpg.Pool, tables: tuple[str, ...] = RESET_TABLES) -> None:
    """Reclaim the dead rows a reset left in the tables it emptied (outside any transaction,
    as VACUUM must be). It keeps each column's statistics; the row counts become the emptied
    tables', which the sales phase's early ANALYZEs then follow."""
    async with pool.acquire() as conn:
        await conn.execute(f"VACUUM {', '.join(tables)}")


async def rebuild_in_process(
    pool: asyncpg.Pool,
    tenant_id: uuid.UUID,
    show_bar: bool = False,
    batch: int = BATCH,
    on_phase: Callable[[str], None] = lambda _phase: None,
    append: bool = True,
    vacuum_after: int = VACUUM_AFTER_ROWS,
) -> RebuildStats:
    """Reset the tenant's costing state and apply its whole event log in process (see the
    module's docstring). ``pool``: the owner's (the log is read across the tenant's rows
    in one snapshot; every costing transaction is scoped to the tenant). ``append``: the
    sales phase appends new sales in memory (``append.py``); else each group goes through
    the engine's group apply (the reference the tests compare it with). ``vacuum_after``:
    the rows a reset must delete to be followed by a VACUUM."""
    stats = RebuildStats()
    started = time.monotonic()
    service = CostingService(pool)
    # No ANALYZE here: the statistics taken before the reset describe the state being
    # rebuilt (the ones of tables emptied by the reset would plan for empty tables).
    deleted = await service.reset_tenant(tenant_id)
    log.info("rebuild.reset", tenant=str(tenant_id), rows_deleted=deleted)
    stats.phases["reset"] = time.monotonic() - started
    next_analyze = 50_000
    if deleted >= vacuum_after:
        t = time.monotonic()
        await vacuum(pool)
        stats.phases["vacuum"] = time.monotonic() - t
        log.info("rebuild.vacuumed", seconds=round(stats.phases["vacuum"], 1))
        next_analyze = FIRST_ANALYZE_SALES

    async with pool.acquire() as reader:
        t = time.monotonic()
        await _plan(reader, tenant_id)
        stats.events = sum([await _count(reader, table) for table in PLAN_TABLES])
        stats.phases["plan"] = time.monotonic() - t
        log.info(
            "rebuild.planned",
            events=stats.events,
            sales=await _count(reader, "rebuild_upserts"),
            removals=await _count(reader, "rebuild_removals"),
            seconds=round(stats.phases["plan"], 1),
        )
        progress = _Progress(stats.events, show_bar)
        try:
            phases = [
                ("catalog", "rebuild_catalog", 1),
                ("removals", "rebuild_removals", batch),
                ("sales", "rebuild_upserts", batch),
                ("rest", "rebuild_rest", batch),
            ]
            for phase, table, size in phases:
                on_phase(phase)
                t = time.monotonic()
                async for events in _batches(reader, table, size, stats):
                    for group in groups(events, size):
                        await _apply(service, group, stats, append and phase == "sales")
                        progress.update(len(group), phase)
                    if phase == "sales":
                        stats.sales += len(events)
                        if stats.sales >= next_analyze:  # plans follow the tables as they grow
                            await analyze(pool)
                            next_analyze *= 4
                stats.phases[phase] = time.monotonic() - t
                log.info("rebuild.phase_done", phase=phase, seconds=round(stats.phases[phase], 1))
        finally:
            progress.close()
            for table in PLAN_TABLES:
                await reader.execute(f"DROP TABLE IF EXISTS {table}")
    t = time.monotonic()
    await analyze(pool)
    stats.phases["analyze"] = time.monotonic() - t
    stats.seconds = time.monotonic() - started
    log.info(
        "rebuild.done",
        tenant=str(tenant_id),
        events=stats.events,
        applied=stats.applied,
        appended=stats.appended,
        duplicates=stats.duplicates,
        failed=stats.failed,
        seconds=round(stats.seconds, 1),
    )
    return stats


async def _plan(reader: Connection, tenant_id: uuid.UUID) -> None:
    """The order of application, in the reader session's temp tables (one transaction)."""
    literal = f"'{uuid.UUID(str(tenant_id))}'::uuid"  # a canonical UUID: safe as a literal
    async with reader.transaction():
        await set_tenant(reader, tenant_id)
        for table in PLAN_TABLES:
            await reader.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in (PLAN_CATALOG, PLAN_REMOVALS, PLAN_UPSERTS, PLAN_REST):
            await reader.execute(statement.replace("$1", literal))
        for table in PLAN_TABLES:
            await reader.execute(f"CREATE UNIQUE INDEX ON {table} (n); ANALYZE {table}")


async def _count(reader: Connection, table: str) -> int:
    count: int = await reader.fetchval(f"SELECT count(*) FROM {table}")
    return count


async def _batches(reader: Connection, table: str, size: int, stats: RebuildStats) -> AsyncIterator[list[Event]]:
    """The plan table's events, parsed, ``size`` at a time, read in pages of FETCH rows (each
    its own short statement); the next batch is read and parsed while the caller applies
    the current one."""
    queue: asyncio.Queue[list[Event] | None] = asyncio.Queue(maxsize=2)
    page = PAGE.format(table=table)

    async def produce() -> None:
        chunk: list[Event] = []
        last = 0
        while rows := await reader.fetch(page, last, FETCH):
            last = rows[-1]["n"]
            for row in rows:
                try:
                    chunk.append(parse_event(bytes(row["body"])))
                except ValidationError as exc:  # the live consumer dead-letters it too
                    stats.failed += 1
                    log.error("rebuild.invalid_event", error=str(exc)[:500])
                    continue
                if len(chunk) >= size:
                    await queue.put(chunk)
                    chunk = []
        if chunk:
            await queue.put(chunk)
        await queue.put(None)

    producer = asyncio.create_task(produce())
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        await producer
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


async def _apply(service: CostingService, group: list[Event], stats: RebuildStats, append: bool = False) -> None:
    """Apply a group in one transaction (``append``: appending its new sales); when it
    fails, one event at a time through the engine, counting (and logging) the ones that
    fail as the live consumer would dead-letter them."""
    try:
        if append:
            applied, appended = await apply_group_appending(service, group)
            stats.appended += appended
        else:
            applied = await service.apply_group(group)
    except Exception as exc:
        if len(group) == 1:
            stats.failed += 1
            log.error("rebuild.event_failed", event_id=str(group[0].event_id), error=f"{type(exc).__name__}: {exc}")
            return
        for event in group:
            await _apply(service, [event], stats)
        return
    new = sum(applied)
    stats.applied += new
    stats.duplicates += len(applied) - new


async def rebuild(pool: asyncpg.Pool, exchange: AbstractExchange, tenant_id: uuid.UUID, show_bar: bool = False) -> int:
    """Reset one tenant's costing state and replay all of its events through the broker;
    returns the count published (the live consumers apply them)."""
    await CostingService(pool).reset_tenant(tenant_id)
    log.info("rebuild.reset", tenant=str(tenant_id))
    return await replay(pool, exchange, Selection(tenant_id=tenant_id), show_bar)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.costing.rebuild", description=__doc__.split("\n")[0])
    parser.add_argument("--tenant", type=uuid.UUID, required=True)
    parser.add_argument(
        "--replay", action="store_true", help="publish the log through the broker (the live consumers apply it)"
    )
    parser.add_argument("--batch", type=int, default=BATCH, help=f"sales per transaction (default {BATCH})")
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.replay:
        async with pool_and_topology(settings) as (pool, topology):
            count = await rebuild(pool, topology.exchange, args.tenant, sys.stderr.isatty())
        print(f"published {count} events")
        return 0
    pool = await create_pool(settings.database_owner_url, 1, 3)
    try:
        stats = await rebuild_in_process(pool, args.tenant, sys.stderr.isatty(), args.batch)
    finally:
        await pool.close()
    print(
        f"rebuilt tenant {args.tenant}: {stats.events} events ({stats.applied} applied, {stats.duplicates} "
        f"duplicates, {stats.failed} failed) in {stats.seconds:.1f} s"
    )
    return 1 if stats.failed else 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
