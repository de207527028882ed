"""The FIFO engine: pure functions over lots and lines, no I/O.

Demand (sale lines) and supply (lots) of one product are laid out on one
quantity axis each, in their fixed orders: line i covers [d_i, d_i + q_i), lot j
covers [s_j, s_j + r_j). Line i takes from lot j the overlap of the two
intervals; what lies beyond the end of supply is its shortage, costed at the
product's weighted average cost (WAC).

The incremental engine re-costs only a *tail* of each axis (from the first
position a change can affect), so the result always equals a full
recomputation while an in-order sale touches only its own lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from shared.money import WIDE, ZERO, overlap, weighted_average, wide


@dataclass(slots=True)
class Placed:
    """An item on an axis: a line (demand) or a lot (supply)."""

    id: int
    quantity: Decimal
    start: Decimal = ZERO

    @property
    def end(self) -> Decimal:
        return self.start + self.quantity


@dataclass(slots=True)
class Allocation:
    lot_id: int
    quantity: Decimal


@dataclass(slots=True)
class LineResult:
    allocations: list[Allocation] = field(default_factory=list)
    shortage: Decimal = ZERO


def lay_out(items: Iterable[Placed], start: Decimal) -> Decimal:
    """Give consecutive positions from ``start`` to items in order; returns the end."""
    position = start
    with wide():
        for item in items:
            item.start = position
            position = position + item.quantity
    return position


def allocate(lines: Sequence[Placed], lots: Sequence[Placed], supply_end: Decimal) -> dict[int, LineResult]:
    """FIFO by interval overlap. ``lines`` and ``lots`` are in axis order and
    already positioned; ``lots`` must include every lot overlapping the lines'
    span below ``supply_end``. One sweep: O(len(lines) + len(lots)).
    (The hot loop of a backdated sale: context methods instead of a context switch.)"""
    add, subtract = WIDE.add, WIDE.subtract
    starts = [lot.start for lot in lots]
    ends = [add(lot.start, lot.quantity) for lot in lots]
    results: dict[int, LineResult] = {}
    j, n = 0, len(lots)
    for line in lines:
        start = line.start
        end = add(start, line.quantity)
        taken: list[Allocation] = []
        while j < n and ends[j] <= start:
            j += 1
        k = j
        while k < n and starts[k] < end:
            lo = start if start > starts[k] else starts[k]
            hi = end if end < ends[k] else ends[k]
            if hi > lo:
                taken.append(Allocation(lots[k].id, subtract(hi, lo)))
            k += 1
        short_from = start if start > supply_end else supply_end
        results[line.id] = LineResult(taken, subtract(end, short_from) if end > short_from else ZERO)
    return results


def consumed(lot: Placed, demand_end: Decimal) -> Decimal:
    """How much of a lot the whole demand [0, demand_end) consumes."""
    return overlap(lot.start, lot.end, ZERO, demand_end)


def line_cost(
    allocations: Iterable[tuple[Decimal, Decimal]], shortage: Decimal, wac: Decimal
) -> tuple[Decimal, Decimal]:
    """(total cost, shortage cost) from (quantity, unit cost) pairs and the shortage at WAC."""
    add, multiply = WIDE.add, WIDE.multiply
    shortage_cost = multiply(shortage, wac)
    total = ZERO
    for quantity, unit_cost in allocations:
        total = add(total, multiply(quantity, unit_cost))
    return add(total, shortage_cost), shortage_cost


def wac(received_qty: Decimal, received_value: Decimal, standard_cost: Decimal | None) -> tuple[Decimal, bool]:
    """(WAC, has cost basis): from received lots, else standard cost, else 0 without basis."""
    if received_qty > 0:
        return weighted_average(received_value, received_qty), True
    if standard_cost is not None:
        return standard_cost, True
    return ZERO, False
