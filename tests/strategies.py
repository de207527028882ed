"""Hypothesis strategies for costing histories.

A *history* is the set of facts one tenant receives (products, lots and their
corrections, sales with edits, voids, deletes and credit memos) plus one way of
delivering them: a random order with some events delivered more than once
(the very same event, same ``event_id``). By docs/costing.md §2 the costing
state depends only on the facts, never on the delivery.

Histories are small (``SMALL``: at most 25 facts) so an example runs fast; ``LONG``
ones (up to 120 facts) reach the longer tails and lot boundaries a few examples need.
Event ids are derived from the tenant id, so they are reproducible for a
given tenant and never collide between tenants.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from shared.events import (
    Event,
    LotCorrected,
    LotReceived,
    ProductUpserted,
    SaleLine,
    SaleRemoved,
    SaleUpserted,
)

UTC = UTC
BASE = datetime(2024, 1, 1, tzinfo=UTC)
FIRST_DAY = date(2024, 1, 1)
SKUS = ("A", "B", "C")


@dataclass(frozen=True)
class Size:
    """How big a history is: facts at most, sale identities (fewest, most), and the
    numbers of lots to draw from (the first is where shrinking goes)."""

    events: int
    sales: tuple[int, int]
    lots: tuple[int, ...]


SMALL = Size(events=25, sales=(1, 4), lots=(2, 3, 4, 1, 0))
LONG = Size(events=120, sales=(12, 24), lots=(8, 10, 12, 6, 4))


def decimals(max_whole: int, places: int) -> SearchStrategy[Decimal]:
    """Non-negative decimals in [0, max_whole] with at most ``places`` decimal places."""
    return st.integers(0, max_whole * 10**places).map(lambda n: Decimal(n).scaleb(-places))


class _Ids:
    """Deterministic, tenant-scoped event ids."""

    def __init__(self, tenant_id: uuid.UUID) -> None:
        self.tenant_id = tenant_id
        self.count = 0

    def next(self) -> uuid.UUID:
        self.count += 1
        return uuid.uuid5(self.tenant_id, f"event-{self.count}")


def _lines(skus: tuple[str, ...]) -> SearchStrategy[list[SaleLine]]:
    @st.composite
    def build(draw: st.DrawFn) -> list[SaleLine]:
        numbers = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True))
        lines = []
        for line_no in numbers:
            kind = draw(
                st.sampled_from(
                    ["inventory", "inventory", "inventory", "unmapped", "service", "shipping", "non_inventory"]
                )
            )
            if kind in ("inventory", "unmapped"):
                # mostly a known sku; sometimes no sku at all (an item with no product)
                sku = draw(st.sampled_from([*skus, *skus, None]))
            else:
                sku = draw(st.sampled_from([None, *skus]))
            lines.append(
                SaleLine(
                    line_no=line_no,
                    sku=sku,
                    quantity=draw(decimals(6, 3)),
                    revenue=draw(decimals(200, 2)),
                    kind=kind,
                )
            )
        return lines

    return build()


@st.composite
def facts(draw: st.DrawFn, tenant_id: uuid.UUID, size: Size = SMALL) -> list[Event]:
    """The facts of one tenant history of at most ``size`` (see the module docstring)."""
    ids = _Ids(tenant_id)
    out: list[Event] = []

    def room() -> bool:
        return len(out) < size.events

    skus = SKUS[: draw(st.integers(1, len(SKUS)))]

    # Products: 1 or 2 versions, or never defined (its lines stay unmapped).
    for sku in skus:
        count = draw(st.sampled_from([1, 1, 2, 0]))
        versions = draw(st.lists(st.integers(0, 5), min_size=count, max_size=count, unique=True))
        for version in versions:
            out.append(
                ProductUpserted(
                    event_id=ids.next(),
                    tenant_id=tenant_id,
                    occurred_at=BASE,
                    sku=sku,
                    name=f"Product {sku}",
                    standard_cost=draw(st.none() | decimals(20, 4)),
                    version=version,
                )
            )

    # Lots: received (version 1), sometimes corrected (versions 2, 3) with a new full state.
    def received_at() -> datetime:
        return BASE + timedelta(days=draw(st.integers(0, 10)), hours=draw(st.sampled_from([0, 8])))

    for number in range(draw(st.sampled_from(size.lots))):
        sku = draw(st.sampled_from(skus))
        lot_number = f"L{number}"
        at = received_at()
        for version in range(1, 2 + draw(st.sampled_from([0, 0, 1, 2]))):
            if version > 1 and draw(st.booleans()):
                at = received_at()
            out.append(
                (LotReceived if version == 1 else LotCorrected)(
                    event_id=ids.next(),
                    tenant_id=tenant_id,
                    occurred_at=BASE,
                    sku=sku,
                    lot_number=lot_number,
                    quantity=draw(decimals(10, 3)),
                    unit_cost=draw(decimals(50, 4)),
                    received_at=at,
                    version=version,
                )
            )

    # Sales: identities may share an external id across types and sources.
    identities = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["quickbooks", "manual"]),
                st.sampled_from(["invoice", "invoice", "sales_receipt", "credit_memo"]),
                st.sampled_from([f"S{n}" for n in range(1, size.sales[1] + 1)]),
            ),
            min_size=size.sales[0],
            max_size=size.sales[1],
            unique=True,
        )
    )
    for source, sale_type, external_id in identities:
        if not room():
            break
        # Creation time is fixed per identity and lands in a few hours only, so ties happen;
        # txn dates are drawn independently of creation order, so sales arrive backdated.
        created = BASE + timedelta(days=draw(st.integers(0, 2)), hours=draw(st.integers(0, 2)))
        count = draw(st.sampled_from([1, 1, 1, 2, 2, 3, 0]))  # 0: a removal with no upsert ever seen
        versions = sorted(draw(st.lists(st.integers(0, 9), min_size=count, max_size=count, unique=True)))
        for version in versions:
            if not room():
                break
            out.append(
                SaleUpserted(
                    event_id=ids.next(),
                    tenant_id=tenant_id,
                    occurred_at=BASE,
                    source=source,
                    sale_type=sale_type,
                    external_id=external_id,
                    version=version,
                    txn_date=FIRST_DAY + timedelta(days=draw(st.integers(0, 10))),
                    source_created_at=created,
                    lines=draw(_lines(skus)),
                )
            )
        choices = [None] * 6 + ["voided", "deleted", "both"] if versions else ["voided", "deleted"]
        removal = draw(st.sampled_from(choices))
        reasons = {None: [], "voided": ["voided"], "deleted": ["deleted"], "both": ["voided", "deleted"]}[removal]
        for reason in reasons:
            if not room():
                break
            out.append(
                SaleRemoved(
                    event_id=ids.next(),
                    tenant_id=tenant_id,
                    occurred_at=BASE,
                    source=source,
                    sale_type=sale_type,
                    external_id=external_id,
                    reason=reason,
                    version=versions[-1] if versions and draw(st.booleans()) else None,
                )
            )
    return out


@st.composite
def deliveries(draw: st.DrawFn, facts: list[Event]) -> list[Event]:
    """A random order of ``facts`` with up to 5 random re-deliveries of the same event objects."""
    order = list(draw(st.permutations(facts)))
    if facts:
        for _ in range(draw(st.integers(0, min(5, len(facts))))):
            order.insert(draw(st.integers(0, len(order))), draw(st.sampled_from(facts)))
    return order


@st.composite
def _history(draw: st.DrawFn, tenant_id: uuid.UUID, size: Size) -> tuple[list[Event], list[Event]]:
    events = draw(facts(tenant_id, size))
    return events, draw(deliveries(events))


def history(tenant_id: uuid.UUID, size: Size = SMALL) -> SearchStrategy[tuple[list[Event], list[Event]]]:
    """(facts, deliveries) for one tenant: the facts, and one delivery order with duplicates."""
    return _history(tenant_id, size)


def retenant(events: list[Event], tenant_id: uuid.UUID) -> list[Event]:
    """The same events for another tenant: new tenant_id, new (tenant-derived) event ids.

    Repeated deliveries of one event stay repeated deliveries of one (new) event.
    """
    copies: dict[uuid.UUID, Event] = {}
    out = []
    for event in events:
        if event.event_id not in copies:
            copies[event.event_id] = event.model_copy(
                update={"tenant_id": tenant_id, "event_id": uuid.uuid5(tenant_id, str(event.event_id))}
            )
        out.append(copies[event.event_id])
    return out
