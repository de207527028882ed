"""Use cases of the costing service: apply events in one transaction.

A transaction applies either one product or lot event, or a group of sale events
of one tenant and distinct sales (``groups`` cuts a stream of events into such
groups; the consumer applies a group of prefetched messages at once). The inbox
rows (processed_events) are written in the same transaction as the effect, so an
event applies once however often it is delivered. Locks: the products a change
touches, in id order; then the sale rows, in id order; then their lines and lots.
Transient database errors re-run the whole transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import asyncpg

from services.costing import ledger, metrics
from services.costing.order import demand_key, supply_key
from services.costing.recost import Cause, ProductChange
from services.costing.repository import CostingRepository
from services.costing.sales import PermanentError, SaleEvent, apply_sale_events, sale_cause, sale_key
from services.costing.tail import LineWriter, recost_product
from shared.db import UnavailableError, retry_transient, tenant_transaction
from shared.events import Event, LotReceived, ProductUpserted, SaleRemoved, SaleUpserted
from shared.faults import crash_if
from shared.logging import get_logger

log = get_logger("costing.service")

__all__ = ["CostingService", "PermanentError", "groups"]


def groups(events: Iterable[Event], limit: int) -> list[list[Event]]:
    """Cut events, in order, into what one transaction may apply: runs of at most
    ``limit`` sale events of one tenant and distinct sales, and each other event alone."""
    out: list[list[Event]] = []
    run: list[SaleEvent] = []
    keys: set[tuple[str, str, str]] = set()
    for ev in events:
        sale = ev if isinstance(ev, (SaleUpserted, SaleRemoved)) else None
        if run and (sale is None or len(run) >= limit or ev.tenant_id != run[0].tenant_id or sale_key(sale) in keys):
            out.append([*run])
            run, keys = [], set()
        if sale is not None:
            run.append(sale)
            keys.add(sale_key(sale))
        else:
            out.append([ev])
    if run:
        out.append([*run])
    return out


class CostingService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        max_attempts: int = 8,
        outage_retry_seconds: float = 300.0,
        crash_point: str | None = None,
    ):
        self.pool = pool
        self.max_attempts = max_attempts
        self.outage_retry_seconds = outage_retry_seconds
        #: A named crash point of the fault tests (shared/faults.py); None in production.
        self.crash_point = crash_point

    async def apply(self, event: Event) -> bool:
        """Apply an event once; False if it had been applied already."""
        return (await self.apply_group([event]))[0]

    async def apply_group(self, events: Sequence[Event]) -> list[bool]:
        """Apply a group (see ``groups``) in one transaction; per event, False if it had
        been applied already."""
        if len(groups(events, len(events))) != 1:
            raise ValueError("not one group: several sale events of one tenant and distinct sales, or one event")
        return await retry_transient(
            lambda: self._apply_once(events),
            self.max_attempts,
            on_retry=log_retry,
            unavailable_for=self.outage_retry_seconds,
        )

    async def _apply_once(self, events: Sequence[Event]) -> list[bool]:
        async with self.pool.acquire() as conn, conn.transaction():
            repo = CostingRepository(conn, events[0].tenant_id)
            await repo.begin_unit_of_work()
            new = await repo.record_events([(e.event_id, e.event_type) for e in events])
            todo = [e for e in events if e.event_id in new]
            if todo:
                writer = LineWriter(repo, _cause(todo[0]))
                if isinstance(todo[0], (SaleUpserted, SaleRemoved)):  # a group of sale events only
                    await apply_sale_events(
                        repo, writer, [e for e in todo if isinstance(e, (SaleUpserted, SaleRemoved))]
                    )
                elif isinstance(todo[0], ProductUpserted):
                    await self._product_upserted(repo, writer, todo[0])
                else:
                    await self._lot_changed(repo, writer, todo[0])
                await writer.flush()
            crash_if("before_commit", self.crash_point)  # effects and inbox rows written, not committed
            return [e.event_id in new for e in events]

    # products and lots -----------------------------------------------------------
    async def _product_upserted(self, repo: CostingRepository, writer: LineWriter, ev: ProductUpserted) -> None:
        pid = (await repo.product_ids([ev.sku]))[ev.sku]
        row = (await repo.lock_products([pid]))[pid]
        if row["version"] is not None and ev.version <= row["version"]:
            return
        await repo.update_product(pid, ev.name, ev.qbo_item_id, ev.standard_cost, ev.version)
        change = ProductChange.of(row, _cause(ev))
        change.standard_cost = ev.standard_cost
        if not row["defined"]:
            mapped = await repo.map_product_lines(pid)
            for r in mapped:
                if r["in_demand"]:
                    change.touch_demand(demand_key(r))
                else:
                    change.reprice_line_ids.add(r["id"])
            await repo.insert_moves(ledger.mapped_moves(mapped, pid, ev.event_id))
        await recost_product(repo, change, writer)

    async def _lot_changed(self, repo: CostingRepository, writer: LineWriter, ev: LotReceived) -> None:
        pid = (await repo.product_ids([ev.sku]))[ev.sku]
        row = (await repo.lock_products([pid]))[pid]
        old = await repo.lot(pid, ev.lot_number)
        if old is not None and old["is_return"]:
            raise PermanentError(f"lot number {ev.lot_number} is a return lot of a credit memo")
        if old is not None and old["version"] is not None and ev.version <= old["version"]:
            return
        change = ProductChange.of(row, _cause(ev))
        if old is not None:
            change.received_qty -= old["quantity"]
            change.received_value -= old["quantity"] * old["unit_cost"]
            change.touch_supply(supply_key(old))
        change.received_qty += ev.quantity
        change.received_value += ev.quantity * ev.unit_cost
        change.touch_supply((ev.received_at, ev.lot_number))
        await repo.upsert_lot(pid, ev.lot_number, False, None, ev.quantity, ev.unit_cost, ev.received_at, ev.version)
        old_quantity = old["quantity"] if old is not None else None
        await repo.insert_moves(
            [ledger.lot_move(pid, ev.lot_number, old_quantity, ev.quantity, ev.received_at, ev.event_id)]
        )
        await recost_product(repo, change, writer)

    async def reset_tenant(self, tenant_id: uuid.UUID) -> int:
        """Drop one tenant's costing state (for a rebuild); returns the rows deleted. Retried
        like an event: its deletes can meet the query service's folder on the same sort keys."""
        return await retry_transient(lambda: self._reset_once(tenant_id), self.max_attempts, on_retry=log_retry)

    async def _reset_once(self, tenant_id: uuid.UUID) -> int:
        async with tenant_transaction(self.pool, tenant_id) as conn:
            return await CostingRepository(conn, tenant_id).reset_tenant()


def log_retry(attempt: int, error: BaseException) -> None:
    kind = "database_unavailable" if isinstance(error, UnavailableError) else "contention"
    metrics.RETRIES.labels(kind).inc()
    log.warning("costing.retry", attempt=attempt, kind=kind, error=str(error))


def _cause(event: Event) -> Cause:
    if isinstance(event, (SaleUpserted, SaleRemoved)):
        return sale_cause(event)
    if isinstance(event, ProductUpserted):
        return f"product {event.sku} updated", event.event_id
    verb = "received" if event.event_type == "lot.received" else "corrected"
    return f"lot {event.lot_number} of {event.sku} {verb}", event.event_id
