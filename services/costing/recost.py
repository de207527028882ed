"""Re-costing one product after a change: the incremental FIFO engine.

A handler records where a change starts on each axis (``ProductChange``), then
``recost`` re-costs only the tail of the axes from there:

* X_d: the demand position where the first changed line (old or new key) starts,
  X_s: the supply position where the first changed lot starts, X = min of them.
* Lines ending after X may change allocations; lines at or after the changed
  demand key also move. Lots at or after the changed supply key move; lots
  overlapping the re-costed demand give or take quantity.

Everything before X is untouched, so an in-order sale costs only its own lines
and a backdated one only the later lines of its own products. The result is the
same as recomputing the product from scratch (the property tests hold it to that).

A tail of up to RECOST_TAIL_IN_DB_FROM lines is re-costed here (``fifo``); a longer one, a
backdated sale before thousands of lines, by one statement inside PostgreSQL
(``repository.RECOST_TAIL_IN_DB``). The property tests run both ways.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from services.costing import fifo
from services.costing.repository import CostingRepository, DemandKey, SupplyKey
from shared.money import WIDE, ZERO, wide

NON_INVENTORY = {"non_inventory", "service", "shipping"}

#: Why a line's cost changed, for its cost revision: (description, event id).
Cause = tuple[str, uuid.UUID]

#: A tail longer than this many lines is re-costed inside PostgreSQL (RECOST_TAIL_IN_DB):
#: the same rules, set-based, without sending every line there and back. Shorter
#: tails (an in-order sale's own lines) are cheaper to re-cost here in one sweep (measured: the two
#: break even at 30-100 lines; at 1,000 lines the database takes half the time).
RECOST_TAIL_IN_DB_FROM = 50


def demand_key_of(txn_date, source_created_at, source: str, external_id: str, sale_type: str, line_no: int) -> DemandKey:
    """A line's place in the demand order; external ids compare length first (numeric ids numerically)."""
    return (txn_date, source_created_at, source, len(external_id), external_id, sale_type, line_no)


def demand_key(row) -> DemandKey:
    return demand_key_of(row["txn_date"], row["source_created_at"], row["source"], row["external_id"],
                         row["sale_type"], row["line_no"])


def supply_key(row) -> SupplyKey:
    return (row["received_at"], row["lot_number"])


def _min(a, b):
    return b if a is None or (b is not None and b < a) else a


@dataclass
class ProductChange:
    """What a handler changed in one product, for ``recost``."""

    row: asyncpg.Record
    received_qty: Decimal = ZERO
    received_value: Decimal = ZERO
    standard_cost: Decimal | None = None
    demand_from: DemandKey | None = None
    supply_from: SupplyKey | None = None
    #: Lines to price again whatever happens (newly mapped ones).
    reprice_line_ids: set[int] = field(default_factory=set)
    #: The product's cost basis after ``recost``.
    wac: Decimal = ZERO
    has_basis: bool = False
    #: The events that changed each axis at its earliest point (several events may change
    #: a product in one batch), and any other cause: why later lines are re-costed.
    demand_cause: Cause | None = None
    supply_cause: Cause | None = None
    cause: Cause | None = None

    @classmethod
    def of(cls, row: asyncpg.Record, cause: Cause | None = None) -> ProductChange:
        return cls(row, row["received_qty"], row["received_value"], row["standard_cost"], cause=cause)

    def touch_demand(self, key: DemandKey, cause: Cause | None = None) -> None:
        if self.demand_from is None or key < self.demand_from:
            self.demand_from, self.demand_cause = key, cause or self.demand_cause
        self.cause = self.cause or cause

    def touch_supply(self, key: SupplyKey, cause: Cause | None = None) -> None:
        if self.supply_from is None or key < self.supply_from:
            self.supply_from, self.supply_cause = key, cause or self.supply_cause
        self.cause = self.cause or cause


def line_flags(kind: str, shortage: Decimal, has_basis: bool, is_return: bool, posted: bool) -> list[str]:
    if not posted:
        return []
    flags = []
    if kind == "unmapped":
        flags.append("unmapped")
    elif kind in NON_INVENTORY:
        flags.append("non_inventory")
    if shortage > 0:
        flags.append("shortage")
    if not has_basis and kind == "inventory" and (shortage > 0 or is_return):
        flags.append("no_cost_basis")
    return flags


@dataclass
class LineWriter:
    """Collects new costs of lines, writes the changed ones, records cost revisions
    for lines that had been costed before, and brings the totals of their sales up to
    date: re-summed for the sales whose lines were rewritten (``sale_ids``), moved by
    the difference for the others (a sale's cost is the sum of its lines' costs)."""

    repo: CostingRepository
    #: Recorded with a revision when the caller names no other cause.
    cause: Cause
    costs: dict[int, tuple[asyncpg.Record, Decimal, Decimal, Decimal, list[str], Cause]] = field(default_factory=dict)
    positions: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)
    sale_ids: set[int] = field(default_factory=set)
    #: Sales created by this transaction: invisible to others, so not locked for their totals.
    created: set[int] = field(default_factory=set)

    def set(self, row, cost: Decimal, shortage: Decimal, shortage_cost: Decimal, flags: list[str],
            position: tuple[Decimal, Decimal] | None = None, cause: Cause | None = None) -> None:
        self.costs[row["id"]] = (row, cost, shortage, shortage_cost, flags, cause or self.cause)
        if position is not None:
            self.positions[row["id"]] = position

    async def flush(self) -> None:
        """One UPDATE for every line whose position or cost changed."""
        writes, revisions = [], []
        deltas: dict[int, tuple[Decimal, bool]] = {}
        for row, cost, shortage, shortage_cost, flags, cause in self.costs.values():
            position = self.positions.get(row["id"])
            moved = position is not None and position != (row["d_start"], row["d_end"])
            repriced = not (row["costed"] and row["cost"] == cost and row["shortage_qty"] == shortage
                            and list(row["flags"]) == flags)
            if not (moved or repriced):
                continue
            start, end = position if moved else (None, None)
            writes.append((row["id"], moved, start, end, cost, shortage, shortage_cost, ",".join(flags)))
            if repriced and row["sale_id"] not in self.sale_ids:
                delta, recheck = deltas.get(row["sale_id"], (ZERO, False))
                delta = WIDE.add(delta, WIDE.subtract(cost, row["cost"]))
                deltas[row["sale_id"]] = (delta, recheck or (row["shortage_qty"] > 0) != (shortage > 0))
            if row["costed"] and row["cost"] != cost:
                revisions.append((row["sale_id"], row["line_no"], row["cost"], cost, *cause))
        await self.repo.write_lines(writes)
        await self.repo.insert_revisions(revisions)
        self.costs.clear()
        self.positions.clear()
        await self.repo.update_sale_totals(self.sale_ids, [(k, *v) for k, v in deltas.items() if v != (ZERO, False)],
                                           self.created)
        self.sale_ids.clear()
        self.created.clear()


async def price_lines(repo: CostingRepository, writer: LineWriter, rows, wac: Decimal, has_basis: bool,
                      posted_sales: set[int], cause: Cause | None = None) -> None:
    """Cost lines whose allocations are already right: from their allocations and
    their shortage at WAC, or (credit memo lines) the value of their return lot."""
    allocs: dict[int, list[tuple[Decimal, Decimal]]] = {}
    for a in await repo.allocations_of([r["id"] for r in rows if r["in_demand"]]):
        allocs.setdefault(a["line_id"], []).append((a["quantity"], a["unit_cost"]))
    for r in rows:
        posted = r["sale_id"] in posted_sales
        if r["in_demand"]:
            cost, shortage_cost = fifo.line_cost(allocs.get(r["id"], []), r["shortage_qty"], wac)
            writer.set(r, cost, r["shortage_qty"], shortage_cost,
                       line_flags(r["kind"], r["shortage_qty"], has_basis, False, True), cause=cause)
        elif posted and r["sale_type"] == "credit_memo" and r["kind"] == "inventory":
            with wide():
                cost = -(r["quantity"] * wac)
            writer.set(r, cost, ZERO, ZERO, line_flags(r["kind"], ZERO, has_basis, True, True), cause=cause)
        else:
            writer.set(r, ZERO, ZERO, ZERO, line_flags(r["kind"], ZERO, has_basis, False, posted), cause=cause)


async def recost(repo: CostingRepository, change: ProductChange, writer: LineWriter) -> None:
    p = change.row
    wac, has_basis = fifo.wac(change.received_qty, change.received_value, change.standard_cost)
    change.wac, change.has_basis = wac, has_basis
    wac_changed = wac != p["wac"] or has_basis != p["has_cost_basis"]
    if wac_changed:
        await repo.reprice_return_lots(p["id"], wac)

    demand_total, supply_total = p["demand_total"], p["supply_total"]
    tail_ids: set[int] = set()
    if change.demand_from is not None or change.supply_from is not None:
        demand_total, supply_total, tail_ids = await _recost_tail(repo, change, writer, wac, has_basis)

    if wac_changed or change.reprice_line_ids:
        dependent = await repo.wac_dependent_lines(p["id"]) if wac_changed else []
        ids = {r["id"] for r in dependent} | change.reprice_line_ids
        rows = [r for r in dependent if r["id"] not in tail_ids]
        extra = ids - tail_ids - {r["id"] for r in rows}
        if extra:
            rows += await repo.lines_by_id(sorted(extra))
        await price_lines(repo, writer, rows, wac, has_basis, await repo.posted_sales({r["sale_id"] for r in rows}),
                          change.cause)

    await repo.update_product_totals(p["id"], change.received_qty, change.received_value, wac, has_basis,
                                     demand_total, supply_total)


async def _recost_tail(repo: CostingRepository, change: ProductChange, writer: LineWriter, wac: Decimal,
                      has_basis: bool) -> tuple[Decimal, Decimal, set[int]]:
    """Re-cost the product's tail; (demand end, supply end, ids of the tail's lines)."""
    p = change.row
    pid = p["id"]
    x_d = x_s = None
    if change.demand_from is not None:
        x_d = await repo.demand_predecessor_end(pid, change.demand_from) or ZERO
    if change.supply_from is not None:
        x_s = await repo.supply_predecessor_end(pid, change.supply_from) or ZERO
    # The re-cost starts where the earlier of the two axes changed; that change is its cause.
    supply_first = x_s is not None and (x_d is None or x_s < x_d)
    cause = (change.supply_cause if supply_first else change.demand_cause) or change.cause or writer.cause

    # Demand tail: lines that move (from the changed demand key on), and lines that may
    # take from a changed part of supply (those ending after x_s; when x_d <= x_s they
    # all come after the changed demand key anyway).
    tail_from = change.demand_from
    if supply_first:
        tail_from = _min(tail_from, await repo.first_line_ending_after(pid, x_s))
    line_rows = []
    if tail_from is not None:
        line_rows = await repo.tail_lines(pid, tail_from, change.demand_from, RECOST_TAIL_IN_DB_FROM + 1)
    if len(line_rows) > RECOST_TAIL_IN_DB_FROM:
        return await _recost_tail_in_db(repo, change, writer, wac, has_basis, (x_d, x_s), tail_from, line_rows[0], cause)

    lines: list[fifo.Placed] = []
    moved: list[fifo.Placed] = []
    for r in line_rows:
        placed = fifo.Placed(r["id"], r["quantity"], r["d_start"] if r["d_start"] is not None else ZERO)
        lines.append(placed)
        if r["moves"]:
            moved.append(placed)
    demand_end = p["demand_total"] if change.demand_from is None else fifo.lay_out(moved, x_d)
    lots, unit_costs, supply_end = await _recost_lots(repo, change, wac, x_s, demand_end,
                                                     lines[0].start if lines else None)
    results = fifo.allocate(lines, lots, supply_end)

    # Allocations: write the difference only.
    existing = {(r["id"], lot_id): quantity for r in line_rows
                for lot_id, quantity in zip(r["lot_ids"] or (), r["quantities"] or ())}
    wanted = {(line_id, a.lot_id): a.quantity for line_id, res in results.items() for a in res.allocations}
    await repo.delete_allocation_pairs([k for k, q in existing.items() if wanted.get(k) != q])
    await repo.insert_allocations([(k[0], k[1], q) for k, q in wanted.items() if existing.get(k) != q])

    # Lines: positions and cost, written together by the writer.
    for placed, r in zip(lines, line_rows):
        res = results[placed.id]
        cost, shortage_cost = fifo.line_cost(((a.quantity, unit_costs[a.lot_id]) for a in res.allocations),
                                             res.shortage, wac)
        writer.set(r, cost, res.shortage, shortage_cost, line_flags(r["kind"], res.shortage, has_basis, False, True),
                   (placed.start, placed.end), cause)
    return demand_end, supply_end, {l.id for l in lines}


async def _recost_tail_in_db(repo: CostingRepository, change: ProductChange, writer: LineWriter, wac: Decimal,
                       has_basis: bool, starts: tuple[Decimal | None, Decimal | None], tail_from: DemandKey,
                       first: asyncpg.Record, cause: Cause) -> tuple[Decimal, Decimal, set[int]]:
    """The same re-cost for a long tail, inside PostgreSQL (RECOST_TAIL_IN_DB); ``first``
    is the tail's first line. The lines are written there, and the totals of their sales
    but for those the writer re-sums."""
    p, (x_d, x_s) = change.row, starts
    demand_end = p["demand_total"]
    if change.demand_from is not None:
        demand_end = WIDE.add(x_d, await repo.demand_quantity_from(p["id"], change.demand_from))
    first_start = x_d if first["moves"] else first["d_start"] if first["d_start"] is not None else ZERO
    # The statement reads the lots the tail overlaps itself: only those that move or
    # whose remaining quantity changes are laid here.
    _, _, supply_end = await _recost_lots(repo, change, wac, x_s, demand_end, None)
    line_ids = await repo.recost_tail_in_db(p["id"], tail_from, change.demand_from, x_d, supply_end, wac, has_basis,
                                           (first_start, demand_end), cause, writer.sale_ids)
    return demand_end, supply_end, set(line_ids or ())


async def _recost_lots(repo: CostingRepository, change: ProductChange, wac: Decimal, x_s: Decimal | None,
                      demand_end: Decimal, first_start: Decimal | None,
                      ) -> tuple[list[fifo.Placed], dict[int, Decimal], Decimal]:
    """Supply tail: lots overlapping the re-costed demand (from ``first_start``) or the change
    of its end, and lots that move; laid out and written. (Lots, their unit costs, supply end.)"""
    p = change.row
    lo = min([demand_end, p["demand_total"]] + ([first_start] if first_start is not None else []))
    hi = max(demand_end, p["demand_total"])
    lot_rows = await repo.tail_lots(p["id"], change.supply_from, lo, hi)
    lots: list[fifo.Placed] = []
    moved_lots: list[fifo.Placed] = []
    unit_costs: dict[int, Decimal] = {}
    for r in lot_rows:
        placed = fifo.Placed(r["id"], r["quantity"], r["s_start"] if r["s_start"] is not None else ZERO)
        lots.append(placed)
        unit_costs[r["id"]] = wac if r["is_return"] else r["unit_cost"]
        if change.supply_from is not None and supply_key(r) >= change.supply_from:
            moved_lots.append(placed)
    supply_end = p["supply_total"] if change.supply_from is None else fifo.lay_out(moved_lots, x_s)
    # Positions and what remains of each lot.
    laid = [(l.id, l.start, l.end, l.quantity - fifo.consumed(l, demand_end)) for l in lots]
    await repo.write_lots([new for new, r in zip(laid, lot_rows)
                           if new[1:] != (r["s_start"], r["s_end"], r["remaining"])])
    return lots, unit_costs, supply_end
