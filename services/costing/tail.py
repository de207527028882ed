"""The tail re-cost's reads and writes: each step reads what the planner
(``recost.py``, no I/O) needs through the repository, lets it decide, and writes
what it decided. ``recost_product`` is the entry point of a handler."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from services.costing import fifo, recost
from services.costing.order import DemandKey
from services.costing.recost import Cause, LinePrice, ProductChange, Row
from services.costing.repository import CostingRepository
from shared.money import WIDE, ZERO


@dataclass
class LineWriter:
    """Collects new costs of lines, writes the changed ones, records cost revisions
    for lines that had been costed before, and brings the totals of their sales up to
    date: re-summed for the sales whose lines were rewritten (``sale_ids``), moved by
    the difference for the others (a sale's cost is the sum of its lines' costs)."""

    repo: CostingRepository
    #: Recorded with a revision when the caller names no other cause.
    cause: Cause
    costs: dict[int, tuple[Row, LinePrice, Cause]] = field(default_factory=dict)
    positions: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)
    sale_ids: set[int] = field(default_factory=set)
    #: Sales created by this transaction: invisible to others, so not locked for their totals.
    created: set[int] = field(default_factory=set)

    def set(
        self, row: Row, price: LinePrice, position: tuple[Decimal, Decimal] | None = None, cause: Cause | None = None
    ) -> None:
        self.costs[row["id"]] = (row, price, cause or self.cause)
        if position is not None:
            self.positions[row["id"]] = position

    async def flush(self) -> None:
        """One UPDATE for every line whose position or cost changed."""
        plan = recost.line_writes(self.costs.values(), self.positions, self.sale_ids)
        await self.repo.write_lines(plan.lines)
        await self.repo.insert_revisions(plan.revisions)
        self.costs.clear()
        self.positions.clear()
        await self.repo.update_sale_totals(self.sale_ids, plan.deltas, self.created)
        self.sale_ids.clear()
        self.created.clear()


async def price_lines(
    repo: CostingRepository,
    writer: LineWriter,
    rows: Sequence[Row],
    wac: Decimal,
    has_basis: bool,
    posted_sales: set[int],
    cause: Cause | None = None,
) -> None:
    """Cost lines whose allocations are already right (``recost.price_line``)."""
    allocs: dict[int, list[tuple[Decimal, Decimal]]] = {}
    for a in await repo.allocations_of([r["id"] for r in rows if r["in_demand"]]):
        allocs.setdefault(a["line_id"], []).append((a["quantity"], a["unit_cost"]))
    for r in rows:
        price = recost.price_line(r, allocs.get(r["id"], []), wac, has_basis, r["sale_id"] in posted_sales)
        writer.set(r, price, cause=cause)


async def recost_product(repo: CostingRepository, change: ProductChange, writer: LineWriter) -> None:
    """Re-cost one product after ``change``: its cost basis, its tail, the lines that
    follow its WAC, its totals."""
    p = change.row
    wac_changed = change.settle_cost_basis()
    wac, has_basis = change.wac, change.has_basis
    if wac_changed:
        await repo.reprice_return_lots(p["id"], wac)

    demand_total, supply_total = p["demand_total"], p["supply_total"]
    tail_ids: set[int] = set()
    if change.touches_axes:
        demand_total, supply_total, tail_ids = await _recost_tail(repo, change, writer, wac, has_basis)

    if wac_changed or change.reprice_line_ids:
        dependent = await repo.wac_dependent_lines(p["id"]) if wac_changed else []
        ids = {r["id"] for r in dependent} | change.reprice_line_ids
        rows = [r for r in dependent if r["id"] not in tail_ids]
        extra = ids - tail_ids - {r["id"] for r in rows}
        if extra:
            rows += await repo.lines_by_id(sorted(extra))
        await price_lines(
            repo, writer, rows, wac, has_basis, await repo.posted_sales({r["sale_id"] for r in rows}), change.cause
        )

    await repo.update_product_totals(
        p["id"], change.received_qty, change.received_value, wac, has_basis, demand_total, supply_total
    )


async def _recost_tail(
    repo: CostingRepository, change: ProductChange, writer: LineWriter, wac: Decimal, has_basis: bool
) -> tuple[Decimal, Decimal, set[int]]:
    """Re-cost the product's tail; (demand end, supply end, ids of the tail's lines)."""
    pid = change.row["id"]
    x_d: Decimal | None = None
    x_s: Decimal | None = None
    if change.demand_from is not None:
        x_d = await repo.demand_predecessor_end(pid, change.demand_from) or ZERO
    if change.supply_from is not None:
        x_s = await repo.supply_predecessor_end(pid, change.supply_from) or ZERO
    supply_first, cause = recost.tail_cause(change, x_d, x_s, writer.cause)

    # Demand tail: lines that move (from the changed demand key on), and lines that may
    # take from a changed part of supply (those ending after x_s; when x_d <= x_s they
    # all come after the changed demand key anyway).
    tail_from = change.demand_from
    if supply_first:
        tail_from = recost.earliest(tail_from, await repo.first_line_ending_after(pid, recost.axis_start(x_s)))
    line_rows: list[asyncpg.Record] = []
    if tail_from is not None:
        line_rows = await repo.tail_lines(pid, tail_from, change.demand_from, recost.RECOST_TAIL_IN_DB_FROM + 1)
        if recost.in_database(len(line_rows)):
            return await _recost_tail_in_db(
                repo, change, writer, wac, has_basis, (x_d, x_s), tail_from, line_rows[0], cause
            )

    lines, demand_end = recost.lay_demand(change, line_rows, x_d)
    supply = await _recost_lots(repo, change, wac, x_s, demand_end, lines[0].start if lines else None)
    results = fifo.allocate(lines, supply.lots, supply.supply_end)

    deletes, inserts = recost.allocation_changes(line_rows, results)
    await repo.delete_allocation_pairs(deletes)
    await repo.insert_allocations(inserts)
    # Lines: positions and cost, written together by the writer.
    prices = recost.price_tail(lines, results, supply.unit_costs, [r["kind"] for r in line_rows], wac, has_basis)
    # One placed line and one price per row read.
    for placed, r, price in zip(lines, line_rows, prices, strict=True):
        writer.set(r, price, (placed.start, placed.end), cause)
    return demand_end, supply.supply_end, {line.id for line in lines}


async def _recost_tail_in_db(
    repo: CostingRepository,
    change: ProductChange,
    writer: LineWriter,
    wac: Decimal,
    has_basis: bool,
    starts: tuple[Decimal | None, Decimal | None],
    tail_from: DemandKey,
    first: Row,
    cause: Cause,
) -> tuple[Decimal, Decimal, set[int]]:
    """The same re-cost for a long tail, inside PostgreSQL (RECOST_TAIL_IN_DB); ``first``
    is the tail's first line. The lines are written there, and the totals of their sales
    but for those the writer re-sums."""
    p, (x_d, x_s) = change.row, starts
    demand_end = p["demand_total"]
    if change.demand_from is not None:
        demand_end = WIDE.add(recost.axis_start(x_d), await repo.demand_quantity_from(p["id"], change.demand_from))
    first_start = recost.long_tail_start(first, x_d)
    # The statement reads the lots the tail overlaps itself: only those that move or
    # whose remaining quantity changes are laid here.
    supply = await _recost_lots(repo, change, wac, x_s, demand_end, None)
    line_ids = await repo.recost_tail_in_db(
        p["id"],
        tail_from,
        change.demand_from,
        x_d,
        supply.supply_end,
        wac,
        has_basis,
        (first_start, demand_end),
        cause,
        writer.sale_ids,
    )
    return demand_end, supply.supply_end, set(line_ids or ())


async def _recost_lots(
    repo: CostingRepository,
    change: ProductChange,
    wac: Decimal,
    x_s: Decimal | None,
    demand_end: Decimal,
    first_start: Decimal | None,
) -> recost.SupplyTail:
    """Supply tail (``recost.lay_supply``), read and written."""
    lo, hi = recost.supply_window(change, demand_end, first_start)
    supply = recost.lay_supply(
        change, await repo.tail_lots(change.row["id"], change.supply_from, lo, hi), wac, x_s, demand_end
    )
    await repo.write_lots(supply.writes)
    return supply
