"""A rebuild's group of sale events in one transaction, its new sales appended at the end
of their products' demand axes, costed in memory and written with a few set-based
statements for all of its products at once.

The rebuild (``rebuild.py``) applies each sale's latest version in demand order, with
every lot already in supply: a new posted invoice or sales receipt then lands after every
line of its products, so costing it only lays its lines out from the product's demand end
and takes from the lots there (the engine's pure functions: ``fifo``, ``recost``). Nothing
before it moves, nothing is re-costed, no line had a cost before (no cost revision), and
its lines and sale are inserted costed, each row written once (its triggers run once).

The group's other events (credit memos, whose return lots enter the middle of supply;
sales that exist already, such as those a removal created; duplicates) go through the
engine first (``sales.apply_sale_events``), in the same transaction; then the new sales
are appended. Before writing, the append checks that it holds: each product's last line
in demand comes before the new lines and ends at the product's demand total, and its cost
basis is settled. When it does not (a live event changed the product meanwhile), the
transaction is rolled back and the whole group goes through the engine
(``CostingService.apply_group``). Either way the state reached is the engine's.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

import asyncpg

from services.costing import fifo, ledger, recost
from services.costing.order import DEMAND_ORDER, DemandKey, demand_key_of, supply_key
from services.costing.recost import LinePrice, ProductChange
from services.costing.repository import CostingRepository
from services.costing.sales import (
    LineSpec,
    apply_sale_events,
    event_specs,
    sale_cause,
    sale_header,
    sale_key,
    sale_revenue,
)
from services.costing.service import CostingService, log_retry
from services.costing.tail import LineWriter
from shared.db import TransientError, retry_transient
from shared.events import Event, SaleRemoved, SaleUpserted
from shared.logging import get_logger
from shared.money import WIDE, ZERO

log = get_logger("costing.append")

__all__ = ["NotAtTheEnd", "apply_group_appending"]


class NotAtTheEnd(Exception):
    """A new sale of the group would not land at the end of a product's axes: the group
    is applied by the engine instead (this transaction wrote nothing)."""


async def apply_group_appending(service: CostingService, events: Sequence[Event]) -> tuple[list[bool], int]:
    """Apply a group of sale events (``service.groups``) in one transaction, appending its
    new sales: (per event, False if it had been applied already; the sales appended, 0
    when the group went through the engine)."""
    try:
        return await retry_transient(
            lambda: _apply_once(service, events),
            service.max_attempts,
            on_retry=log_retry,
            unavailable_for=service.outage_retry_seconds,
        )
    except NotAtTheEnd as exc:
        log.info("rebuild.not_at_the_end", reason=str(exc))
        return await service.apply_group(events), 0


async def _apply_once(service: CostingService, events: Sequence[Event]) -> tuple[list[bool], int]:
    async with service.pool.acquire() as conn, conn.transaction():
        repo = CostingRepository(conn, events[0].tenant_id)
        await repo.begin_unit_of_work()
        new = await repo.record_events([(e.event_id, e.event_type) for e in events])
        todo = [e for e in events if e.event_id in new]
        sale_events = [e for e in todo if isinstance(e, (SaleUpserted, SaleRemoved))]
        if len(sale_events) != len(todo):
            raise ValueError("a group of sale events only")
        candidates = [e for e in sale_events if isinstance(e, SaleUpserted) and e.sale_type != "credit_memo"]
        existing = await repo.existing_sales([sale_key(e) for e in candidates])
        fresh = [e for e in candidates if sale_key(e) not in existing]
        fresh_ids = {e.event_id for e in fresh}
        rest = [e for e in sale_events if e.event_id not in fresh_ids]
        if rest:
            writer = LineWriter(repo, sale_cause(rest[0]))
            await apply_sale_events(repo, writer, rest)
            await writer.flush()
        if fresh:
            await _append(repo, fresh)
        return [e.event_id in new for e in events], len(fresh)


class _Line:
    """A new line, placed on its product's demand axis if it is in demand."""

    __slots__ = ("event", "in_demand", "kind", "placed", "price", "product_id", "spec")

    def __init__(self, event: SaleUpserted, spec: LineSpec, product_id: int | None, kind: str, in_demand: bool):
        self.event, self.spec, self.product_id, self.kind, self.in_demand = event, spec, product_id, kind, in_demand
        self.placed: fifo.Placed | None = None
        self.price = LinePrice(ZERO, ZERO, ZERO, [])

    def key(self) -> DemandKey:
        ev = self.event
        return demand_key_of(
            ev.txn_date, ev.source_created_at, ev.source, ev.external_id, ev.sale_type, self.spec.line_no
        )


async def _append(repo: CostingRepository, events: list[SaleUpserted]) -> None:
    """Create these sales (new, posted, no credit memo) with their lines costed."""
    specs = {ev.event_id: event_specs(ev) for ev in events}
    sku_ids = await repo.product_ids({s.sku for ss in specs.values() for s in ss if s.candidate and s.sku is not None})
    products = await repo.lock_products(sku_ids.values())
    changes = {pid: ProductChange.of(row) for pid, row in products.items()}
    for change in changes.values():
        if change.settle_cost_basis():
            raise NotAtTheEnd("a product's cost basis is not settled")

    lines: list[_Line] = []
    demand: dict[int, list[_Line]] = defaultdict(list)
    for ev in events:
        for spec in specs[ev.event_id]:
            pid = sku_ids.get(spec.sku) if spec.candidate and spec.sku is not None else None
            defined = pid is not None and bool(products[pid]["defined"])
            kind = (
                ("inventory" if defined else "unmapped")
                if spec.candidate
                else ("unmapped" if spec.kind == "inventory" else spec.kind)
            )
            line = _Line(ev, spec, pid, kind, spec.candidate and defined and spec.quantity > 0)
            lines.append(line)
            if line.in_demand and pid is not None:
                demand[pid].append(line)
    costed = await _cost_demand(repo, changes, demand)
    for line in lines:
        if not line.in_demand:
            own = changes.get(line.product_id) if line.product_id is not None else None
            wac, basis = (own.wac, own.has_basis) if own else (ZERO, True)
            row = {"in_demand": False, "sale_type": line.event.sale_type, "kind": line.kind}
            line.price = recost.price_line(row, (), wac, basis, True)
    await _write(repo, events, specs, lines, changes, costed)


#: Per product with new lines in demand: its lots' writes (``recost.SupplyTail.writes``), its
#: new lines' allocations, its new demand end.
Costed = dict[int, tuple[list[tuple[int, Decimal, Decimal, Decimal]], dict[int, fifo.LineResult], Decimal]]


async def _cost_demand(
    repo: CostingRepository, changes: dict[int, ProductChange], demand: dict[int, list[_Line]]
) -> Costed:
    """Place each product's new lines after its demand end and take from the lots there."""
    ends = await repo.demand_ends(sorted(demand))
    windows: list[tuple[int, Decimal, Decimal]] = []
    placed: dict[int, list[fifo.Placed]] = {}
    tmp = 0
    for pid, product_lines in demand.items():
        product_lines.sort(key=_Line.key)
        start: Decimal = changes[pid].row["demand_total"]
        last = ends.get(pid)
        if (last["d_end"] if last is not None else ZERO) != start or (
            last is not None and tuple(last[c] for c in DEMAND_ORDER) >= product_lines[0].key()
        ):
            raise NotAtTheEnd(f"product {pid}: new lines before its demand end")
        placed[pid] = []
        for line in product_lines:
            tmp -= 1  # placeholder ids (negative: no lot's), until the lines are inserted
            line.placed = fifo.Placed(tmp, line.spec.quantity)
            placed[pid].append(line.placed)
        windows.append((pid, start, fifo.lay_out(placed[pid], start)))
    lots: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for r in await repo.lots_in_windows(windows):
        lots[r["product_id"]].append(r)
    costed: Costed = {}
    for pid, _start, end in windows:
        change = changes[pid]
        supply = recost.lay_supply(change, sorted(lots[pid], key=supply_key), change.wac, None, end)
        results = fifo.allocate(placed[pid], supply.lots, supply.supply_end)
        kinds = ["inventory"] * len(placed[pid])
        prices = recost.price_tail(placed[pid], results, supply.unit_costs, kinds, change.wac, change.has_basis)
        for line, price in zip(demand[pid], prices, strict=True):
            line.price = price
        costed[pid] = (supply.writes, results, end)
    return costed


async def _write(
    repo: CostingRepository,
    events: list[SaleUpserted],
    specs: dict[uuid.UUID, list[LineSpec]],
    lines: list[_Line],
    changes: dict[int, ProductChange],
    costed: Costed,
) -> None:
    """The sales with their totals, their lines costed, allocations, lots, products, moves, versions."""
    by_sale: dict[uuid.UUID, list[_Line]] = defaultdict(list)
    for line in lines:
        by_sale[line.event.event_id].append(line)
    sale_rows = []
    for ev in events:
        cost = ZERO
        for line in by_sale[ev.event_id]:
            cost = WIDE.add(cost, line.price.cost)
        short = any(line.price.shortage > 0 for line in by_sale[ev.event_id])
        sale_rows.append((*sale_key(ev), *sale_header(ev), sale_revenue(ev, specs), cost, short))
    created = await repo.insert_sales(sale_rows)
    if len(created) != len(events):
        raise TransientError("a sale was created while the rebuild appended it")
    sale_ids = {(r["source"], r["type"], r["external_id"]): r["id"] for r in created}
    line_rows = []
    for line in lines:
        ev, spec, price, placed = line.event, line.spec, line.price, line.placed
        line_rows.append(
            (
                sale_ids[sale_key(ev)],
                spec.line_no,
                spec.sku,
                line.product_id,
                spec.description,
                line.kind,
                spec.quantity,
                spec.signed_revenue,
                spec.signed_revenue,
                spec.candidate,
                line.in_demand,
                ev.txn_date,
                ev.source_created_at,
                ev.source,
                ev.external_id,
                ev.sale_type,
                placed.start if placed is not None else None,
                placed.end if placed is not None else None,
                price.cost,
                price.shortage,
                price.shortage_cost,
                ",".join(price.flags),
            )
        )
    line_ids = await repo.insert_costed_lines(line_rows)
    ids = {
        line.placed.id: line_ids[(sale_ids[sale_key(line.event)], line.spec.line_no)]
        for line in lines
        if line.placed is not None
    }
    await repo.insert_allocations(
        [
            (ids[tmp], a.lot_id, a.quantity)
            for _writes, results, _end in costed.values()
            for tmp, result in results.items()
            for a in result.allocations
        ]
    )
    await repo.write_lots([w for writes, _results, _end in costed.values() for w in writes])
    await repo.update_demand_totals(
        sorted((pid, costed[pid][2] if pid in costed else c.row["demand_total"]) for pid, c in changes.items())
    )
    moves: list[ledger.Move] = []
    for ev in events:
        sold = {
            line.spec.line_no: (None, (line.product_id, line.spec.quantity, ev.txn_date))
            for line in by_sale[ev.event_id]
            if line.in_demand and line.product_id is not None
        }
        moves += ledger.sale_moves(sale_ids[sale_key(ev)], sold, {}, ev.event_id)
    await repo.insert_moves(moves)
    await repo.record_versions(
        [(sale_ids[sale_key(ev)], ev.version, ev.event_id, ev.event_type, True, None) for ev in events]
    )
