"""A plain in-memory model of the costing semantics (docs/costing.md §2 and §3).

``compute(events)`` recomputes a tenant's whole costing state from the facts,
with no incremental cleverness, so it is obviously a pure function of them.
The costing engine must always arrive at the same ``State``
(``tests/projection.py`` reads it back from the database).

Decisions a plain reading of the rules could leave open (docs/costing.md §2.1, §3 states them):

* Facts are de-duplicated by ``event_id``; delivery order and count never matter.
* A sale's content is its ``SaleUpserted`` with the highest version. Its status is
  ``deleted`` if any ``SaleRemoved(deleted)`` exists, else ``voided`` if any
  ``SaleRemoved(voided)`` exists, else ``posted`` (removal is terminal, whatever
  the versions). A removed sale with no upsert still exists, with no lines.
* A product is defined iff some ``ProductUpserted`` exists; its fields come from
  the highest version. A lot is its ``LotReceived``/``LotCorrected`` with the
  highest version (both carry the full lot state).
* Two different events with the same version for one identity are not a valid
  history; the model then picks the larger ``event_id`` only to stay deterministic.
* A line with kind inventory/unmapped but no sku resolves to ``unmapped``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TypeVar

from shared.events import (
    Event,
    LotReceived,
    ProductUpserted,
    SaleLine,
    SaleRemoved,
    SaleUpserted,
)
from shared.money import ZERO, overlap, weighted_average, wide

SaleKey = tuple[str, str, str]  # (source, sale_type, external_id)
LineKey = tuple[str, str, str, int]  # (source, sale_type, external_id, line_no)
LotKey = tuple[str, str]  # (sku, lot_number)

POSTED, VOIDED, DELETED = "posted", "voided", "deleted"
INVENTORY, UNMAPPED = "inventory", "unmapped"
CANDIDATE_KINDS = (INVENTORY, UNMAPPED)
DEMAND_SALE_TYPES = ("invoice", "sales_receipt")
CREDIT_MEMO = "credit_memo"

FLAG_UNMAPPED = "unmapped"
FLAG_NON_INVENTORY = "non_inventory"
FLAG_SHORTAGE = "shortage"
FLAG_NO_COST_BASIS = "no_cost_basis"


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class SaleState:
    status: str  # posted | voided | deleted
    version: int | None  # highest SaleUpserted version; None if never upserted
    revenue: Decimal
    cost: Decimal
    shortage: bool  # a line of it is short

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost


@dataclass(frozen=True)
class LineState:
    kind: str  # resolved kind: inventory | unmapped | non_inventory | service | shipping
    quantity: Decimal
    revenue: Decimal  # negative on a credit memo
    cost: Decimal  # negative on a credit memo inventory line
    shortage_qty: Decimal
    allocations: dict[str, Decimal] = field(default_factory=dict)  # lot_number -> qty > 0
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LotState:
    quantity: Decimal
    unit_cost: Decimal
    remaining: Decimal


@dataclass(frozen=True)
class State:
    sales: dict[SaleKey, SaleState] = field(default_factory=dict)
    lines: dict[LineKey, LineState] = field(default_factory=dict)
    lots: dict[LotKey, LotState] = field(default_factory=dict)
    #: Quantity on hand per sku: received + returned - sold (lines in demand); negative while
    #: short. What the stock ledger sums to. Not compared (the projection has no such part).
    on_hand: dict[str, Decimal] = field(default_factory=dict, compare=False)


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Lot:
    sku: str
    lot_number: str
    received_at: datetime
    quantity: Decimal
    unit_cost: Decimal
    is_return: bool


@dataclass(frozen=True)
class _DemandLine:
    key: LineKey
    order: tuple
    quantity: Decimal


_E = TypeVar("_E", SaleUpserted, ProductUpserted, LotReceived)


def _latest(candidates: list[_E]) -> _E:
    """The highest version; ties (invalid histories) broken by event_id to stay deterministic."""
    return max(candidates, key=lambda e: (e.version, str(e.event_id)))


def sale_key(event: SaleUpserted | SaleRemoved) -> SaleKey:
    return (event.source, event.sale_type, event.external_id)


def is_candidate(line: SaleLine) -> bool:
    """An inventory candidate: an inventory or unmapped line that names a sku."""
    return line.kind in CANDIDATE_KINDS and line.sku is not None


def resolved_kind(line: SaleLine, defined: Container[str]) -> str:
    if line.kind in CANDIDATE_KINDS:
        return INVENTORY if line.sku is not None and line.sku in defined else UNMAPPED
    return line.kind


def return_lot_number(source: str, external_id: str, line_no: int) -> str:
    return f"RET-{source}-{external_id}-{line_no}"


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# --------------------------------------------------------------------------- compute


def compute(events: Iterable[Event]) -> State:
    # 1. The facts: each event once, then the current version of every identity.
    unique: dict[object, Event] = {}
    for event in events:
        unique.setdefault(event.event_id, event)

    upserts: dict[SaleKey, list[SaleUpserted]] = defaultdict(list)
    removals: dict[SaleKey, set[str]] = defaultdict(set)
    product_events: dict[str, list[ProductUpserted]] = defaultdict(list)
    lot_events: dict[LotKey, list[LotReceived]] = defaultdict(list)
    for event in unique.values():
        if isinstance(event, SaleUpserted):
            upserts[sale_key(event)].append(event)
        elif isinstance(event, SaleRemoved):
            removals[sale_key(event)].add(event.reason)
        elif isinstance(event, ProductUpserted):
            product_events[event.sku].append(event)
        elif isinstance(event, LotReceived):  # LotCorrected is a LotReceived too
            lot_events[(event.sku, event.lot_number)].append(event)
        else:  # pragma: no cover - the Event union is closed
            raise TypeError(f"unknown event {event!r}")

    products: dict[str, ProductUpserted] = {sku: _latest(evs) for sku, evs in product_events.items()}
    content: dict[SaleKey, SaleUpserted | None] = {}
    status: dict[SaleKey, str] = {}
    for key in set(upserts) | set(removals):
        content[key] = _latest(upserts[key]) if upserts.get(key) else None
        reasons = removals.get(key, set())
        status[key] = DELETED if DELETED in reasons else VOIDED if VOIDED in reasons else POSTED

    received: list[_Lot] = []
    for (sku, lot_number), evs in lot_events.items():
        lot = _latest(evs)
        received.append(_Lot(sku, lot_number, lot.received_at, lot.quantity, lot.unit_cost, False))

    # 2. WAC per sku over received (non-return) lots; standard cost; else 0, no basis.
    def wac(sku: str) -> tuple[Decimal, bool]:
        """(WAC, has_cost_basis)."""
        own = [lot for lot in received if lot.sku == sku]
        with wide():
            total_qty = sum((lot.quantity for lot in own), ZERO)
            if total_qty > 0:
                total_value = sum((lot.quantity * lot.unit_cost for lot in own), ZERO)
                return weighted_average(total_value, total_qty), True
        product = products.get(sku)
        if product is not None and product.standard_cost is not None:
            return product.standard_cost, True
        return ZERO, False

    # 3. Return lots from posted credit memos.
    returns: list[_Lot] = []
    for key, sale in content.items():
        if sale is None or status[key] != POSTED or sale.sale_type != CREDIT_MEMO:
            continue
        for line in sale.lines:
            if is_candidate(line) and line.quantity > 0:
                assert line.sku is not None
                returns.append(
                    _Lot(
                        sku=line.sku,
                        lot_number=return_lot_number(sale.source, sale.external_id, line.line_no),
                        received_at=start_of(sale.txn_date),
                        quantity=line.quantity,
                        unit_cost=wac(line.sku)[0],
                        is_return=True,
                    )
                )
    all_lots = received + returns

    # 4. FIFO per defined product: overlap of cumulative intervals.
    allocations: dict[LineKey, dict[str, Decimal]] = {}
    shortages: dict[LineKey, Decimal] = {}
    consumed: dict[LotKey, Decimal] = defaultdict(lambda: ZERO)
    on_hand: dict[str, Decimal] = defaultdict(lambda: ZERO)
    with wide():
        for lot in all_lots:
            on_hand[lot.sku] += lot.quantity
    for sku in products:
        supply = sorted((lot for lot in all_lots if lot.sku == sku), key=lambda lot: (lot.received_at, lot.lot_number))
        demand: list[_DemandLine] = []
        for key, sale in content.items():
            if sale is None or status[key] != POSTED or sale.sale_type not in DEMAND_SALE_TYPES:
                continue
            for line in sale.lines:
                if is_candidate(line) and line.sku == sku and line.quantity > 0:
                    # Spelled out here on purpose: the model is the engine's independent oracle,
                    # so it does not share the engine's definition (services/costing/order.py).
                    order = (
                        sale.txn_date,
                        sale.source_created_at,
                        sale.source,
                        len(sale.external_id),  # external ids compare length first: "101" < "1000"
                        sale.external_id,
                        sale.sale_type,
                        line.line_no,
                    )
                    demand.append(_DemandLine((*key, line.line_no), order, line.quantity))
                    with wide():
                        on_hand[sku] -= line.quantity
        demand.sort(key=lambda d: d.order)

        with wide():
            total_supply = sum((lot.quantity for lot in supply), ZERO)
            d_start = ZERO
            for item in demand:
                d_end = d_start + item.quantity
                taken: dict[str, Decimal] = {}
                s_start = ZERO
                for lot in supply:
                    s_end = s_start + lot.quantity
                    qty = overlap(d_start, d_end, s_start, s_end)
                    if qty > 0:
                        taken[lot.lot_number] = qty
                        consumed[(sku, lot.lot_number)] += qty
                    s_start = s_end
                allocations[item.key] = taken
                shortages[item.key] = overlap(d_start, d_end, total_supply, max(d_end, total_supply))
                d_start = d_end

    # 5. Lines and sale totals.
    lot_cost = {(lot.sku, lot.lot_number): lot.unit_cost for lot in all_lots}
    sales: dict[SaleKey, SaleState] = {}
    lines: dict[LineKey, LineState] = {}
    for key, sale in content.items():
        posted = status[key] == POSTED
        sale_revenue = ZERO
        sale_cost = ZERO
        sale_short = False
        for line in sale.lines if sale is not None else []:
            line_key: LineKey = (*key, line.line_no)
            kind = resolved_kind(line, products)
            if not posted:
                lines[line_key] = LineState(kind, line.quantity, ZERO, ZERO, ZERO, {}, frozenset())
                continue
            credit = sale.sale_type == CREDIT_MEMO
            with wide():
                revenue = -line.revenue if credit else line.revenue
                cost = ZERO
                shortage = ZERO
                taken: dict[str, Decimal] = {}
                flags: set[str] = set()
                if kind == INVENTORY:
                    assert line.sku is not None
                    unit_wac, has_basis = wac(line.sku)
                    if credit:
                        cost = -(line.quantity * unit_wac)
                        if not has_basis:
                            flags.add(FLAG_NO_COST_BASIS)
                    else:
                        taken = allocations.get(line_key, {})
                        shortage = shortages.get(line_key, ZERO)
                        cost = (
                            sum(
                                (qty * lot_cost[(line.sku, lot_number)] for lot_number, qty in taken.items()),
                                ZERO,
                            )
                            + shortage * unit_wac
                        )
                        if shortage > 0:
                            flags.add(FLAG_SHORTAGE)
                            if not has_basis:
                                flags.add(FLAG_NO_COST_BASIS)
                elif kind == UNMAPPED:
                    flags.add(FLAG_UNMAPPED)
                else:
                    flags.add(FLAG_NON_INVENTORY)
                sale_revenue += revenue
                sale_cost += cost
                sale_short = sale_short or shortage > 0
            lines[line_key] = LineState(kind, line.quantity, revenue, cost, shortage, dict(taken), frozenset(flags))
        sales[key] = SaleState(
            status[key], sale.version if sale is not None else None, sale_revenue, sale_cost, sale_short
        )

    lots: dict[LotKey, LotState] = {}
    with wide():
        for lot in all_lots:
            lot_key = (lot.sku, lot.lot_number)
            lots[lot_key] = LotState(lot.quantity, lot.unit_cost, lot.quantity - consumed[lot_key])
    return State(sales=sales, lines=lines, lots=lots, on_hand=dict(on_hand))


# --------------------------------------------------------------------------- diff


def _show(value: object) -> str:
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (SaleState, LineState, LotState)):
        return "(" + ", ".join(f"{f.name}={_show(getattr(value, f.name))}" for f in fields(value)) + ")"
    return str(value)


def diff_states(expected: State, actual: State, limit: int = 40) -> str:
    """A readable list of the differences between two states (empty if equal)."""
    out: list[str] = []
    for part in ("sales", "lines", "lots"):
        want: dict = getattr(expected, part)
        got: dict = getattr(actual, part)
        for key in sorted(set(want) | set(got), key=repr):
            if key not in got:
                out.append(f"{part}{key}: missing, expected {_show(want[key])}")
            elif key not in want:
                out.append(f"{part}{key}: unexpected {_show(got[key])}")
            elif want[key] != got[key]:
                changed = [
                    f"{f.name} expected {_show(getattr(want[key], f.name))}, got {_show(getattr(got[key], f.name))}"
                    for f in fields(want[key])
                    if getattr(want[key], f.name) != getattr(got[key], f.name)
                ]
                out.append(f"{part}{key}: " + "; ".join(changed))
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more"]
    return "\n".join(out)


def describe(state: State) -> str:
    """The whole state, one row a line (for debugging a failing example)."""
    rows = []
    for part in ("sales", "lines", "lots"):
        for key, value in sorted(getattr(state, part).items(), key=lambda kv: repr(kv[0])):
            rows.append(f"{part}{key} {_show(value)}")
    return "\n".join(rows)
