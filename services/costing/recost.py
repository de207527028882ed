"""Re-costing one product after a change: the planning half of the incremental FIFO
engine. Plain functions over rows and numbers, no I/O (``tail.py`` reads the rows,
calls these and writes what they decide).

A handler records where a change starts on each axis (``ProductChange``); the tail
re-cost then lays out again only the tail of the axes from there:

* X_d: the demand position where the first changed line (old or new key) starts,
  X_s: the supply position where the first changed lot starts, X = min of them.
* Lines ending after X may change allocations; lines at or after the changed
  demand key also move. Lots at or after the changed supply key move; lots
  overlapping the re-costed demand give or take quantity.

Everything before X is untouched, so an in-order sale costs only its own lines
and a backdated one only the later lines of its own products. The result is the
same as recomputing the product from scratch (the property tests hold it to that).

A tail of up to RECOST_TAIL_IN_DB_FROM lines is re-costed in Python (``fifo`` and
the functions below); a longer one, a backdated sale before thousands of lines, by
one statement inside PostgreSQL (``repository.RECOST_TAIL_IN_DB``). The property
tests run both ways (the ``tail_recost`` fixture).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from services.costing import fifo
from services.costing.flags import line_flags
from services.costing.order import DemandKey, SupplyKey, supply_key
from services.costing.order import Row as Row  # re-exported: a row read from the database
from shared.money import WIDE, ZERO, wide

#: Why a line's cost changed, for its cost revision: (description, event id).
Cause = tuple[str, uuid.UUID]

#: A tail longer than this many lines is re-costed inside PostgreSQL (RECOST_TAIL_IN_DB):
#: the same rules, set-based, without sending every line there and back. Shorter
#: tails (an in-order sale's own lines) are cheaper to re-cost here in one sweep (measured: the two
#: break even at 30-100 lines; at 1,000 lines the database takes half the time).
RECOST_TAIL_IN_DB_FROM = 50


def in_database(tail_length: int) -> bool:
    """Whether a tail of this many lines (at least) is re-costed inside PostgreSQL."""
    return tail_length > RECOST_TAIL_IN_DB_FROM


def earliest(a: DemandKey | None, b: DemandKey | None) -> DemandKey | None:
    return b if a is None or (b is not None and b < a) else a


def axis_start(x: Decimal | None) -> Decimal:
    """Where a changed axis is laid out from: the caller reads it whenever that axis changed."""
    if x is None:
        raise ValueError("a changed axis is laid out without the position it starts from")
    return x


@dataclass
class ProductChange:
    """What a handler changed in one product, for the tail re-cost."""

    row: Row
    received_qty: Decimal = ZERO
    received_value: Decimal = ZERO
    standard_cost: Decimal | None = None
    demand_from: DemandKey | None = None
    supply_from: SupplyKey | None = None
    #: Lines to price again whatever happens (newly mapped ones).
    reprice_line_ids: set[int] = field(default_factory=set)
    #: The product's cost basis after the re-cost.
    wac: Decimal = ZERO
    has_basis: bool = False
    #: The events that changed each axis at its earliest point (several events may change
    #: a product in one batch), and any other cause: why later lines are re-costed.
    demand_cause: Cause | None = None
    supply_cause: Cause | None = None
    cause: Cause | None = None

    @classmethod
    def of(cls, row: Row, cause: Cause | None = None) -> ProductChange:
        return cls(row, row["received_qty"], row["received_value"], row["standard_cost"], cause=cause)

    def touch_demand(self, key: DemandKey, cause: Cause | None = None) -> None:
        if self.demand_from is None or key < self.demand_from:
            self.demand_from, self.demand_cause = key, cause or self.demand_cause
        self.cause = self.cause or cause

    def touch_supply(self, key: SupplyKey, cause: Cause | None = None) -> None:
        if self.supply_from is None or key < self.supply_from:
            self.supply_from, self.supply_cause = key, cause or self.supply_cause
        self.cause = self.cause or cause

    @property
    def touches_axes(self) -> bool:
        return self.demand_from is not None or self.supply_from is not None

    def settle_cost_basis(self) -> bool:
        """Set ``wac`` and ``has_basis`` from the received lots (or the standard cost);
        True if they differ from the product's stored ones."""
        p = self.row
        self.wac, self.has_basis = fifo.wac(self.received_qty, self.received_value, self.standard_cost)
        return bool(self.wac != p["wac"] or self.has_basis != p["has_cost_basis"])


# --- the tail -----------------------------------------------------------------------


def tail_cause(change: ProductChange, x_d: Decimal | None, x_s: Decimal | None, default: Cause) -> tuple[bool, Cause]:
    """(whether supply changed first, the cause of the re-cost): it starts where the
    earlier of the two axes changed, and that change is its cause."""
    supply_first = x_s is not None and (x_d is None or x_s < x_d)
    cause = (change.supply_cause if supply_first else change.demand_cause) or change.cause or default
    return supply_first, cause


def lay_demand(
    change: ProductChange, line_rows: Sequence[Row], x_d: Decimal | None
) -> tuple[list[fifo.Placed], Decimal]:
    """The tail's lines placed (those that move laid out again from ``x_d``); the demand end."""
    lines: list[fifo.Placed] = []
    moved: list[fifo.Placed] = []
    for r in line_rows:
        placed = fifo.Placed(r["id"], r["quantity"], r["d_start"] if r["d_start"] is not None else ZERO)
        lines.append(placed)
        if r["moves"]:
            moved.append(placed)
    demand_end = change.row["demand_total"] if change.demand_from is None else fifo.lay_out(moved, axis_start(x_d))
    return lines, demand_end


def long_tail_start(first: Row, x_d: Decimal | None) -> Decimal:
    """Where a tail re-costed in the database starts on the demand axis (``first``: its first line)."""
    if first["moves"]:
        return axis_start(x_d)
    return first["d_start"] if first["d_start"] is not None else ZERO


def supply_window(change: ProductChange, demand_end: Decimal, first_start: Decimal | None) -> tuple[Decimal, Decimal]:
    """The supply positions whose lots the re-cost reads: those overlapping the re-laid
    demand (from ``first_start``) or the change of its end."""
    p = change.row
    lo = min([demand_end, p["demand_total"]] + ([first_start] if first_start is not None else []))
    return lo, max(demand_end, p["demand_total"])


@dataclass
class SupplyTail:
    lots: list[fifo.Placed]
    unit_costs: dict[int, Decimal]
    supply_end: Decimal
    #: (id, s_start, s_end, remaining) of the lots whose position or remainder changed.
    writes: list[tuple[int, Decimal, Decimal, Decimal]]


def lay_supply(
    change: ProductChange, lot_rows: Sequence[Row], wac: Decimal, x_s: Decimal | None, demand_end: Decimal
) -> SupplyTail:
    """The supply tail: lots (return lots at WAC), those from the changed supply key on laid
    out again from ``x_s``, and what remains of each once the demand [0, demand_end) is served."""
    lots: list[fifo.Placed] = []
    moved_lots: list[fifo.Placed] = []
    unit_costs: dict[int, Decimal] = {}
    for r in lot_rows:
        placed = fifo.Placed(r["id"], r["quantity"], r["s_start"] if r["s_start"] is not None else ZERO)
        lots.append(placed)
        unit_costs[r["id"]] = wac if r["is_return"] else r["unit_cost"]
        if change.supply_from is not None and supply_key(r) >= change.supply_from:
            moved_lots.append(placed)
    supply_end = change.row["supply_total"] if change.supply_from is None else fifo.lay_out(moved_lots, axis_start(x_s))
    laid = [(lot.id, lot.start, lot.end, lot.quantity - fifo.consumed(lot, demand_end)) for lot in lots]
    # One laid lot per row read.
    writes = [
        new for new, r in zip(laid, lot_rows, strict=True) if new[1:] != (r["s_start"], r["s_end"], r["remaining"])
    ]
    return SupplyTail(lots, unit_costs, supply_end, writes)


def allocation_changes(
    line_rows: Sequence[Row],
    results: Mapping[int, fifo.LineResult],
) -> tuple[list[tuple[int, int]], list[tuple[int, int, Decimal]]]:
    """The difference between the tail's stored allocations (``lot_ids``, ``quantities`` of
    each row) and the wanted ones: (pairs to delete, (line, lot, quantity) to insert)."""
    existing = {
        (r["id"], lot_id): quantity
        for r in line_rows
        # Both arrays are aggregated over the same allocations.
        for lot_id, quantity in zip(r["lot_ids"] or (), r["quantities"] or (), strict=True)
    }
    wanted = {(line_id, a.lot_id): a.quantity for line_id, res in results.items() for a in res.allocations}
    return (
        [k for k, q in existing.items() if wanted.get(k) != q],
        [(k[0], k[1], q) for k, q in wanted.items() if existing.get(k) != q],
    )


@dataclass
class LinePrice:
    cost: Decimal
    shortage: Decimal
    shortage_cost: Decimal
    flags: list[str]


def price_tail(
    lines: Sequence[fifo.Placed],
    results: Mapping[int, fifo.LineResult],
    unit_costs: Mapping[int, Decimal],
    kinds: Sequence[str],
    wac: Decimal,
    has_basis: bool,
) -> list[LinePrice]:
    """The price of each tail line (in ``lines`` order; ``kinds``: their kinds) from its allocations."""
    out = []
    for placed, kind in zip(lines, kinds, strict=True):
        res = results[placed.id]
        cost, shortage_cost = fifo.line_cost(
            ((a.quantity, unit_costs[a.lot_id]) for a in res.allocations), res.shortage, wac
        )
        out.append(LinePrice(cost, res.shortage, shortage_cost, line_flags(kind, res.shortage, has_basis, False, True)))
    return out


def price_line(
    r: Row, allocations: Iterable[tuple[Decimal, Decimal]], wac: Decimal, has_basis: bool, posted: bool
) -> LinePrice:
    """A line whose allocations are already right: from its allocations ((quantity, unit
    cost) pairs) and its shortage at WAC, or (a credit memo line) the value of its return
    lot at WAC; any other line costs nothing."""
    if r["in_demand"]:
        cost, shortage_cost = fifo.line_cost(allocations, r["shortage_qty"], wac)
        return LinePrice(
            cost, r["shortage_qty"], shortage_cost, line_flags(r["kind"], r["shortage_qty"], has_basis, False, True)
        )
    if posted and r["sale_type"] == "credit_memo" and r["kind"] == "inventory":
        with wide():
            cost = -(r["quantity"] * wac)
        return LinePrice(cost, ZERO, ZERO, line_flags(r["kind"], ZERO, has_basis, True, True))
    return LinePrice(ZERO, ZERO, ZERO, line_flags(r["kind"], ZERO, has_basis, False, posted))


# --- what to write of the re-costed lines ----------------------------------------------


#: (id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags as text) of a line.
LineWrite = tuple[int, bool, Decimal | None, Decimal | None, Decimal, Decimal, Decimal, str]


@dataclass
class LineWrites:
    #: (id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags as text) per line.
    lines: list[LineWrite]
    #: (sale_id, line_no, old cost, new cost, cause, event id) per cost revision.
    revisions: list[tuple[int, int, Decimal, Decimal, str, uuid.UUID]]
    #: (sale_id, cost delta, whether its shortage flag may have changed) per sale not re-summed.
    deltas: list[tuple[int, Decimal, bool]]


def line_writes(
    costs: Iterable[tuple[Row, LinePrice, Cause]], positions: Mapping[int, tuple[Decimal, Decimal]], resummed: set[int]
) -> LineWrites:
    """Of the lines' new prices (and positions): the lines whose position or price changed,
    a cost revision for each already-costed line whose cost changed, and how the totals of
    their sales move (except ``resummed``: sales whose totals are summed again anyway)."""
    writes: list[LineWrite] = []
    revisions: list[tuple[int, int, Decimal, Decimal, str, uuid.UUID]] = []
    deltas: dict[int, tuple[Decimal, bool]] = {}
    for row, price, cause in costs:
        cost, shortage = price.cost, price.shortage
        position = positions.get(row["id"])
        moved = position is not None and position != (row["d_start"], row["d_end"])
        repriced = not (
            row["costed"]
            and row["cost"] == cost
            and row["shortage_qty"] == shortage
            and list(row["flags"]) == price.flags
        )
        if not (moved or repriced):
            continue
        start, end = position if moved and position is not None else (None, None)
        writes.append((row["id"], moved, start, end, cost, shortage, price.shortage_cost, ",".join(price.flags)))
        if repriced and row["sale_id"] not in resummed:
            delta, recheck = deltas.get(row["sale_id"], (ZERO, False))
            delta = WIDE.add(delta, WIDE.subtract(cost, row["cost"]))
            deltas[row["sale_id"]] = (delta, recheck or (row["shortage_qty"] > 0) != (shortage > 0))
        if row["costed"] and row["cost"] != cost:
            revisions.append((row["sale_id"], row["line_no"], row["cost"], cost, *cause))
    return LineWrites(writes, revisions, [(k, *v) for k, v in deltas.items() if v != (ZERO, False)])
