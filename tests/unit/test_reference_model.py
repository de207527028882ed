"""Hand-computed costing cases (docs/costing.md §2, §3), checked against the reference model.

Each case is a list of steps: the events delivered in that step, then the numbers
expected afterwards, worked out by hand in the comments. The same cases run
against the real engine in ``tests/integration/test_costing_rules.py`` (import
``CASES`` and ``problems``), so the numbers here are the specification, not
whatever the model happens to compute.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.events import (
    Event,
    LotCorrected,
    LotReceived,
    ProductUpserted,
    SaleLine,
    SaleRemoved,
    SaleUpserted,
)
from tests.reference_model import LineKey, LotKey, SaleKey, State, compute
from tests.strategies import deliveries, history, retenant

UTC = UTC
OCCURRED = datetime(2024, 6, 1, tzinfo=UTC)
QBO = "quickbooks"


# --------------------------------------------------------------------------- building events


def S(ext: str, sale_type: str = "invoice", source: str = QBO) -> SaleKey:
    return (source, sale_type, ext)


def L(ext: str, line_no: int, sale_type: str = "invoice", source: str = QBO) -> LineKey:
    return (source, sale_type, ext, line_no)


def line(no: int, qty: str, revenue: str, sku: str | None = "W", kind: str = "inventory") -> SaleLine:
    return SaleLine(
        line_no=no,
        sku=sku,
        quantity=Decimal(qty),
        revenue=Decimal(revenue),
        kind=kind,  # type: ignore[arg-type]
    )


class Facts:
    """Event constructors for one tenant; sales get increasing creation times unless given one."""

    def __init__(self, tenant_id: uuid.UUID) -> None:
        self.tenant_id = tenant_id
        self._created = datetime(2024, 1, 1, tzinfo=UTC)

    def product(self, sku: str = "W", standard_cost: str | None = None, version: int = 0) -> ProductUpserted:
        return ProductUpserted(
            tenant_id=self.tenant_id,
            occurred_at=OCCURRED,
            sku=sku,
            name=f"Product {sku}",
            standard_cost=None if standard_cost is None else Decimal(standard_cost),
            version=version,
        )

    def lot(
        self,
        lot_number: str,
        qty: str,
        unit_cost: str,
        day: str,
        sku: str = "W",
        version: int = 1,
        corrected: bool = False,
    ) -> LotReceived:
        cls = LotCorrected if corrected else LotReceived
        return cls(
            tenant_id=self.tenant_id,
            occurred_at=OCCURRED,
            sku=sku,
            lot_number=lot_number,
            quantity=Decimal(qty),
            unit_cost=Decimal(unit_cost),
            received_at=datetime.fromisoformat(f"{day}T08:00:00+00:00"),
            version=version,
        )

    def sale(
        self,
        ext: str,
        day: str,
        *lines: SaleLine,
        version: int = 0,
        sale_type: str = "invoice",
        source: str = QBO,
        created: str | None = None,
    ) -> SaleUpserted:
        if created is None:
            self._created += timedelta(minutes=1)
            created_at = self._created
        else:
            created_at = datetime.fromisoformat(created)
        return SaleUpserted(
            tenant_id=self.tenant_id,
            occurred_at=OCCURRED,
            source=source,  # type: ignore[arg-type]
            sale_type=sale_type,  # type: ignore[arg-type]
            external_id=ext,
            version=version,
            txn_date=date.fromisoformat(day),
            source_created_at=created_at,
            lines=list(lines),
        )

    def remove(self, ext: str, reason: str, sale_type: str = "invoice", source: str = QBO) -> SaleRemoved:
        return SaleRemoved(
            tenant_id=self.tenant_id,
            occurred_at=OCCURRED,
            source=source,  # type: ignore[arg-type]
            sale_type=sale_type,  # type: ignore[arg-type]
            external_id=ext,
            reason=reason,  # type: ignore[arg-type]
        )


# --------------------------------------------------------------------------- expectations


@dataclass
class Expect:
    """Partial expectations: only the fields named are checked. Decimals are written as strings."""

    sales: dict[SaleKey, dict] = field(default_factory=dict)
    lines: dict[LineKey, dict] = field(default_factory=dict)
    lots: dict[LotKey, dict] = field(default_factory=dict)
    absent: list[tuple[str, tuple]] = field(default_factory=list)  # ("sales" | "lines" | "lots", key)
    no_lines: list[SaleKey] = field(default_factory=list)  # sales that must have no lines


@dataclass
class Step:
    events: list[Event]
    expect: Expect


def _same(expected: object, actual: object) -> bool:
    if isinstance(expected, str) and isinstance(actual, Decimal):
        return Decimal(expected) == actual
    if isinstance(expected, set):
        return frozenset(expected) == actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: Decimal(v) for k, v in expected.items()} == actual
    return expected == actual


def problems(state: State, expect: Expect) -> list[str]:
    """What in ``state`` differs from ``expect`` (empty when it all matches)."""
    out: list[str] = []
    for part in ("sales", "lines", "lots"):
        have = getattr(state, part)
        for key, wanted in getattr(expect, part).items():
            if key not in have:
                out.append(f"{part}{key}: missing")
                continue
            for name, value in wanted.items():
                actual = getattr(have[key], name)
                if not _same(value, actual):
                    out.append(f"{part}{key}.{name}: expected {value!r}, got {actual!r}")
    for part, key in expect.absent:
        if key in getattr(state, part):
            out.append(f"{part}{key}: expected absent, got {getattr(state, part)[key]!r}")
    for sale in expect.no_lines:
        extra = [k for k in state.lines if k[:3] == sale]
        if extra:
            out.append(f"sale {sale}: expected no lines, got {extra}")
    return out


NONE: set[str] = set()


# --------------------------------------------------------------------------- the cases


def fifo_across_lots(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Supply, ordered by received_at (not by lot number):
    #   LOT-C [0, 10) @ 2.00   LOT-A [10, 15.5) @ 3.10   LOT-B [15.5, 35.5) @ 4.50
    # Demand: INV-1/1 [0, 12), INV-1/2 [12, 20), INV-2/1 [20, 30)
    #   INV-1/1: LOT-C 10 + LOT-A 2      = 10*2 + 2*3.1         = 20 + 6.2     = 26.2
    #   INV-1/2: LOT-A 3.5 + LOT-B 4.5   = 3.5*3.1 + 4.5*4.5    = 10.85 + 20.25 = 31.10
    #   INV-2/1: LOT-B 10                = 10*4.5               = 45
    #   INV-1 totals: revenue 120 + 100 = 220, cost 26.2 + 31.1 = 57.3
    #   remaining: LOT-C 0, LOT-A 0, LOT-B 20 - 4.5 - 10 = 5.5
    events = [
        f.product(),
        f.lot("LOT-C", "10", "2.00", "2024-01-01"),
        f.lot("LOT-A", "5.5", "3.10", "2024-01-02"),
        f.lot("LOT-B", "20", "4.50", "2024-01-03"),
        f.sale("INV-1", "2024-02-01", line(1, "12", "120"), line(2, "8", "100")),
        f.sale("INV-2", "2024-02-02", line(1, "10", "150")),
    ]
    return [
        Step(
            events,
            Expect(
                lines={
                    L("INV-1", 1): dict(
                        kind="inventory",
                        revenue="120",
                        cost="26.2",
                        shortage_qty="0",
                        allocations={"LOT-C": "10", "LOT-A": "2"},
                        flags=NONE,
                    ),
                    L("INV-1", 2): dict(
                        cost="31.10", shortage_qty="0", allocations={"LOT-A": "3.5", "LOT-B": "4.5"}, flags=NONE
                    ),
                    L("INV-2", 1): dict(cost="45", allocations={"LOT-B": "10"}, flags=NONE),
                },
                sales={
                    S("INV-1"): dict(status="posted", version=0, revenue="220", cost="57.3"),
                    S("INV-2"): dict(revenue="150", cost="45"),
                },
                lots={
                    ("W", "LOT-C"): dict(quantity="10", unit_cost="2", remaining="0"),
                    ("W", "LOT-A"): dict(remaining="0"),
                    ("W", "LOT-B"): dict(remaining="5.5"),
                },
            ),
        )
    ]


def same_received_at_by_lot_number(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Both lots received at the same instant: order by lot number, A before B.
    #   INV-1 qty 1 takes A: 1 * 1 = 1; B untouched.
    events = [
        f.product(),
        f.lot("B", "1", "10", "2024-01-01"),
        f.lot("A", "1", "1", "2024-01-01"),
        f.sale("INV-1", "2024-02-01", line(1, "1", "20")),
    ]
    return [
        Step(
            events,
            Expect(
                lines={L("INV-1", 1): dict(cost="1", allocations={"A": "1"})},
                lots={("W", "A"): dict(remaining="0"), ("W", "B"): dict(remaining="1")},
            ),
        )
    ]


def shortage_at_wac(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # WAC = (3*10 + 4*15) / 7 = 90/7 = 12.857142857142857... -> 12.857142857143 (12 places, half-even)
    # INV-1 qty 9: L1 3 (30) + L2 4 (60) + shortage 2 * 12.857142857143 (25.714285714286)
    #            = 115.714285714286
    events = [
        f.product(),
        f.lot("L1", "3", "10", "2024-01-01"),
        f.lot("L2", "4", "15", "2024-01-02"),
        f.sale("INV-1", "2024-02-01", line(1, "9", "200")),
    ]
    return [
        Step(
            events,
            Expect(
                lines={
                    L("INV-1", 1): dict(
                        cost="115.714285714286",
                        shortage_qty="2",
                        allocations={"L1": "3", "L2": "4"},
                        flags={"shortage"},
                    ),
                },
                sales={S("INV-1"): dict(revenue="200", cost="115.714285714286")},
                lots={("W", "L1"): dict(remaining="0"), ("W", "L2"): dict(remaining="0")},
            ),
        )
    ]


def no_cost_basis(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # No lots, no standard cost: WAC = 0 and no cost basis.
    # Step 1: INV-1 qty 3 -> shortage 3, cost 3 * 0 = 0, flags shortage + no_cost_basis.
    # Step 2: CM-1 returns 1 -> revenue -10, cost -(1 * 0) = 0, flag no_cost_basis;
    #   return lot RET-quickbooks-CM-1-1 (1 @ 0) is supply, so INV-1 takes it:
    #   allocations {RET: 1}, shortage 2, cost 1*0 + 2*0 = 0; the return lot's remaining is 0.
    ret = "RET-quickbooks-CM-1-1"
    cm = S("CM-1", "credit_memo")
    return [
        Step(
            [f.product(), f.sale("INV-1", "2024-02-01", line(1, "3", "30"))],
            Expect(
                lines={
                    L("INV-1", 1): dict(cost="0", shortage_qty="3", allocations={}, flags={"shortage", "no_cost_basis"})
                },
            ),
        ),
        Step(
            [f.sale("CM-1", "2024-02-05", line(1, "1", "10"), sale_type="credit_memo")],
            Expect(
                lines={
                    L("INV-1", 1): dict(
                        cost="0", shortage_qty="2", allocations={ret: "1"}, flags={"shortage", "no_cost_basis"}
                    ),
                    L("CM-1", 1, "credit_memo"): dict(
                        kind="inventory",
                        revenue="-10",
                        cost="0",
                        shortage_qty="0",
                        allocations={},
                        flags={"no_cost_basis"},
                    ),
                },
                sales={cm: dict(status="posted", revenue="-10", cost="0")},
                lots={("W", ret): dict(quantity="1", unit_cost="0", remaining="0")},
            ),
        ),
    ]


def standard_cost_without_lots(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Step 1: standard cost 7.25, no lots: INV-1 qty 4 is short 4 -> 4 * 7.25 = 29.00
    # Step 2: product v1 standard cost 8.10 -> 4 * 8.10 = 32.40
    # Step 3: lot L1 1 @ 9 arrives: WAC = 9 (lots win over standard cost)
    #         L1 1 (9) + shortage 3 * 9 (27) = 36
    return [
        Step(
            [f.product(standard_cost="7.25"), f.sale("INV-1", "2024-02-01", line(1, "4", "50"))],
            Expect(lines={L("INV-1", 1): dict(cost="29.00", shortage_qty="4", flags={"shortage"})}),
        ),
        Step(
            [f.product(standard_cost="8.10", version=1)],
            Expect(lines={L("INV-1", 1): dict(cost="32.40", shortage_qty="4", flags={"shortage"})}),
        ),
        Step(
            [f.lot("L1", "1", "9", "2024-01-01")],
            Expect(
                lines={L("INV-1", 1): dict(cost="36", shortage_qty="3", allocations={"L1": "1"}, flags={"shortage"})},
                sales={S("INV-1"): dict(revenue="50", cost="36")},
            ),
        ),
    ]


def shortage_resolved_by_later_lot(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Step 1: L1 2 @ 5; INV-1 qty 5 -> L1 2 (10) + shortage 3 * WAC 5 (15) = 25
    # Step 2: L2 10 @ 6 received after the sale -> L1 2 (10) + L2 3 (18) = 28, no shortage;
    #         L2 remaining 10 - 3 = 7
    return [
        Step(
            [f.product(), f.lot("L1", "2", "5", "2024-01-01"), f.sale("INV-1", "2024-02-01", line(1, "5", "100"))],
            Expect(
                lines={L("INV-1", 1): dict(cost="25", shortage_qty="3", allocations={"L1": "2"}, flags={"shortage"})}
            ),
        ),
        Step(
            [f.lot("L2", "10", "6", "2024-03-01")],
            Expect(
                lines={
                    L("INV-1", 1): dict(cost="28", shortage_qty="0", allocations={"L1": "2", "L2": "3"}, flags=NONE)
                },
                lots={("W", "L1"): dict(remaining="0"), ("W", "L2"): dict(remaining="7")},
            ),
        ),
    ]


def credit_memo_return_lot_consumed(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # WAC = (10*4 + 10*6) / 20 = 5
    # Step 1: INV-1 qty 15: L1 10 (40) + L2 5 (30) = 70
    #         CM-1 returns 2: revenue -40, cost -(2 * 5) = -10;
    #         return lot RET-quickbooks-CM-1-1: 2 @ 5, received 2024-02-10T00:00Z, remaining 2
    # Step 2: INV-2 qty 7. Supply L1 [0,10) L2 [10,20) RET [20,22); INV-2 covers [15,22):
    #         L2 5 (30) + RET 2 (10) = 40; RET remaining 0
    ret = "RET-quickbooks-CM-1-1"
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "10", "4", "2024-01-01"),
                f.lot("L2", "10", "6", "2024-01-02"),
                f.sale("INV-1", "2024-02-01", line(1, "15", "300")),
                f.sale("CM-1", "2024-02-10", line(1, "2", "40"), sale_type="credit_memo"),
            ],
            Expect(
                lines={
                    L("INV-1", 1): dict(cost="70", allocations={"L1": "10", "L2": "5"}),
                    L("CM-1", 1, "credit_memo"): dict(
                        kind="inventory",
                        quantity="2",
                        revenue="-40",
                        cost="-10",
                        shortage_qty="0",
                        allocations={},
                        flags=NONE,
                    ),
                },
                sales={S("CM-1", "credit_memo"): dict(status="posted", revenue="-40", cost="-10")},
                lots={("W", ret): dict(quantity="2", unit_cost="5", remaining="2")},
            ),
        ),
        Step(
            [f.sale("INV-2", "2024-03-01", line(1, "7", "140"))],
            Expect(
                lines={L("INV-2", 1): dict(cost="40", shortage_qty="0", allocations={"L2": "5", ret: "2"})},
                lots={("W", ret): dict(remaining="0"), ("W", "L2"): dict(remaining="0")},
            ),
        ),
    ]


def void_restores_lots(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Step 1: L1 10 @ 3. INV-1 qty 4 -> 12. INV-2 qty 8 -> L1 6 (18) + shortage 2 * 3 (6) = 24.
    # Step 2: INV-1 voided -> its line keeps quantity 4 but costs nothing;
    #         INV-2 now takes L1 8 -> 24, no shortage; L1 remaining 10 - 8 = 2
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "10", "3", "2024-01-01"),
                f.sale("INV-1", "2024-02-01", line(1, "4", "40")),
                f.sale("INV-2", "2024-02-02", line(1, "8", "80")),
            ],
            Expect(
                lines={
                    L("INV-1", 1): dict(cost="12", allocations={"L1": "4"}),
                    L("INV-2", 1): dict(cost="24", shortage_qty="2", allocations={"L1": "6"}, flags={"shortage"}),
                },
                lots={("W", "L1"): dict(remaining="0")},
            ),
        ),
        Step(
            [f.remove("INV-1", "voided")],
            Expect(
                sales={S("INV-1"): dict(status="voided", version=0, revenue="0", cost="0")},
                lines={
                    L("INV-1", 1): dict(
                        kind="inventory",
                        quantity="4",
                        revenue="0",
                        cost="0",
                        shortage_qty="0",
                        allocations={},
                        flags=NONE,
                    ),
                    L("INV-2", 1): dict(cost="24", shortage_qty="0", allocations={"L1": "8"}, flags=NONE),
                },
                lots={("W", "L1"): dict(remaining="2")},
            ),
        ),
    ]


def edit_recosts(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # L1 5 @ 2, L2 5 @ 4.
    # Step 1: INV-1 v0 qty 3 -> L1 3 = 6; INV-2 qty 4 covers [3,7) -> L1 2 (4) + L2 2 (8) = 12
    # Step 2: INV-1 v1 qty 6 + a shipping line (revenue 5):
    #         INV-1/1 [0,6) -> L1 5 (10) + L2 1 (4) = 14; INV-2 [6,10) -> L2 4 = 16
    #         INV-1 revenue 60 + 5 = 65, cost 14
    # Step 3: INV-1 v2 moves to 2024-02-10, qty 1, shipping line dropped:
    #         INV-2 [0,4) -> L1 4 = 8; INV-1 [4,5) -> L1 1 = 2; L1 remaining 0, L2 remaining 5
    created = "2024-01-15T09:00:00+00:00"
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "5", "2", "2024-01-01"),
                f.lot("L2", "5", "4", "2024-01-02"),
                f.sale("INV-1", "2024-02-01", line(1, "3", "30"), created=created),
                f.sale("INV-2", "2024-02-05", line(1, "4", "40")),
            ],
            Expect(
                lines={
                    L("INV-1", 1): dict(cost="6", allocations={"L1": "3"}),
                    L("INV-2", 1): dict(cost="12", allocations={"L1": "2", "L2": "2"}),
                }
            ),
        ),
        Step(
            [
                f.sale(
                    "INV-1",
                    "2024-02-01",
                    line(1, "6", "60"),
                    line(2, "1", "5", sku=None, kind="shipping"),
                    version=1,
                    created=created,
                )
            ],
            Expect(
                sales={S("INV-1"): dict(version=1, revenue="65", cost="14")},
                lines={
                    L("INV-1", 1): dict(quantity="6", cost="14", allocations={"L1": "5", "L2": "1"}),
                    L("INV-1", 2): dict(kind="shipping", revenue="5", cost="0", flags={"non_inventory"}),
                    L("INV-2", 1): dict(cost="16", allocations={"L2": "4"}),
                },
                lots={("W", "L1"): dict(remaining="0"), ("W", "L2"): dict(remaining="0")},
            ),
        ),
        Step(
            [f.sale("INV-1", "2024-02-10", line(1, "1", "10"), version=2, created=created)],
            Expect(
                sales={S("INV-1"): dict(version=2, revenue="10", cost="2")},
                lines={
                    L("INV-1", 1): dict(quantity="1", cost="2", allocations={"L1": "1"}),
                    L("INV-2", 1): dict(cost="8", allocations={"L1": "4"}),
                },
                lots={("W", "L1"): dict(remaining="0"), ("W", "L2"): dict(remaining="5")},
                absent=[("lines", L("INV-1", 2))],
            ),
        ),
    ]


def stale_version_ignored(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # L1 10 @ 1.5. INV-1 v2 qty 2 -> 2 * 1.5 = 3.0; a late v1 (qty 5) changes nothing.
    expect = Expect(
        sales={S("INV-1"): dict(version=2, revenue="20", cost="3.0")},
        lines={L("INV-1", 1): dict(quantity="2", revenue="20", cost="3.0", allocations={"L1": "2"})},
        lots={("W", "L1"): dict(remaining="8")},
    )
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "10", "1.5", "2024-01-01"),
                f.sale("INV-1", "2024-02-01", line(1, "2", "20"), version=2),
            ],
            expect,
        ),
        Step([f.sale("INV-1", "2024-01-20", line(1, "5", "50"), version=1)], expect),
    ]


def delete_is_terminal(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Step 1: L1 10 @ 2; INV-1 v1 qty 3 -> 6; L1 remaining 7
    # Step 2: INV-1 deleted -> revenue 0, cost 0, L1 remaining 10.
    #         GHOST (a manual sales receipt never upserted) deleted: exists, version None, no lines.
    # Step 3: INV-1 v5 (qty 4) arrives later: still deleted; content is v5 (line qty 4) but costs nothing.
    # Step 4: a void after the delete: still deleted.
    ghost = S("GHOST", "sales_receipt", "manual")
    deleted = Expect(
        sales={
            S("INV-1"): dict(status="deleted", revenue="0", cost="0"),
            ghost: dict(status="deleted", version=None, revenue="0", cost="0"),
        },
        lines={L("INV-1", 1): dict(revenue="0", cost="0", shortage_qty="0", allocations={}, flags=NONE)},
        lots={("W", "L1"): dict(remaining="10")},
        no_lines=[ghost],
    )
    later = Expect(
        sales={**deleted.sales, S("INV-1"): dict(status="deleted", version=5, revenue="0", cost="0")},
        lines={L("INV-1", 1): dict(kind="inventory", quantity="4", revenue="0", cost="0", allocations={}, flags=NONE)},
        lots=deleted.lots,
        no_lines=[ghost],
    )
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "10", "2", "2024-01-01"),
                f.sale("INV-1", "2024-02-01", line(1, "3", "30"), version=1),
            ],
            Expect(sales={S("INV-1"): dict(status="posted", cost="6")}, lots={("W", "L1"): dict(remaining="7")}),
        ),
        Step([f.remove("INV-1", "deleted"), f.remove("GHOST", "deleted", "sales_receipt", "manual")], deleted),
        Step([f.sale("INV-1", "2024-02-01", line(1, "4", "40"), version=5)], later),
        Step([f.remove("INV-1", "voided")], later),
    ]


def backdated_sale_recosts_later(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # L1 5 @ 1, L2 5 @ 2.
    # Step 1: INV-B (2024-03-01) qty 4 -> L1 4 = 4
    # Step 2: INV-A dated 2024-02-01 but created later, qty 3: it goes first.
    #         INV-A [0,3) -> L1 3 = 3; INV-B [3,7) -> L1 2 (2) + L2 2 (4) = 6; L2 remaining 3
    # Step 3: manual SR-C on INV-B's date, created one hour before INV-B, qty 2:
    #         order INV-A, SR-C, INV-B. SR-C [3,5) -> L1 2 = 2; INV-B [5,9) -> L2 4 = 8; L2 remaining 1
    sr_c = L("SR-C", 1, "sales_receipt", "manual")
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "5", "1", "2024-01-01"),
                f.lot("L2", "5", "2", "2024-01-02"),
                f.sale("INV-B", "2024-03-01", line(1, "4", "40"), created="2024-03-01T10:00:00+00:00"),
            ],
            Expect(lines={L("INV-B", 1): dict(cost="4", allocations={"L1": "4"})}),
        ),
        Step(
            [f.sale("INV-A", "2024-02-01", line(1, "3", "30"), created="2024-03-02T09:00:00+00:00")],
            Expect(
                lines={
                    L("INV-A", 1): dict(cost="3", allocations={"L1": "3"}),
                    L("INV-B", 1): dict(cost="6", allocations={"L1": "2", "L2": "2"}),
                },
                lots={("W", "L1"): dict(remaining="0"), ("W", "L2"): dict(remaining="3")},
            ),
        ),
        Step(
            [
                f.sale(
                    "SR-C",
                    "2024-03-01",
                    line(1, "2", "20"),
                    sale_type="sales_receipt",
                    source="manual",
                    created="2024-03-01T09:00:00+00:00",
                )
            ],
            Expect(
                lines={
                    L("INV-A", 1): dict(cost="3", allocations={"L1": "3"}),
                    sr_c: dict(cost="2", allocations={"L1": "2"}),
                    L("INV-B", 1): dict(cost="8", allocations={"L2": "4"}),
                },
                lots={("W", "L1"): dict(remaining="0"), ("W", "L2"): dict(remaining="1")},
            ),
        ),
    ]


def unmapped_becomes_inventory(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Lot G-1 of sku G (10 @ 2) exists, product G does not yet.
    # Step 1: lines 1 (inventory, sku G, qty 3) and 2 (unmapped, sku G, qty 1) are unmapped: cost 0;
    #         line 3 (inventory, no sku) is unmapped too. Lot untouched. Revenue 30 + 10 + 5 = 45, cost 0.
    # Step 2: product G defined: line 1 [0,3) -> 3 * 2 = 6; line 2 [3,4) -> 1 * 2 = 2;
    #         sale cost 8; lot remaining 10 - 4 = 6; line 3 stays unmapped.
    sale = f.sale(
        "INV-1",
        "2024-02-01",
        line(1, "3", "30", sku="G"),
        line(2, "1", "10", sku="G", kind="unmapped"),
        line(3, "1", "5", sku=None),
    )
    unmapped = dict(kind="unmapped", cost="0", shortage_qty="0", allocations={}, flags={"unmapped"})
    return [
        Step(
            [f.lot("G-1", "10", "2", "2024-01-01", sku="G"), sale],
            Expect(
                lines={L("INV-1", 1): unmapped, L("INV-1", 2): unmapped, L("INV-1", 3): unmapped},
                sales={S("INV-1"): dict(revenue="45", cost="0")},
                lots={("G", "G-1"): dict(remaining="10")},
            ),
        ),
        Step(
            [f.product("G")],
            Expect(
                lines={
                    L("INV-1", 1): dict(kind="inventory", cost="6", allocations={"G-1": "3"}, flags=NONE),
                    L("INV-1", 2): dict(kind="inventory", cost="2", allocations={"G-1": "1"}, flags=NONE),
                    L("INV-1", 3): unmapped,
                },
                sales={S("INV-1"): dict(revenue="45", cost="8")},
                lots={("G", "G-1"): dict(remaining="6")},
            ),
        ),
    ]


def non_inventory_lines(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Service, shipping (even naming sku W) and non-inventory lines carry revenue and zero cost;
    # nothing is taken from L1. The credit memo's service line: revenue -20, cost 0, no return lot.
    non_inv = dict(cost="0", shortage_qty="0", allocations={}, flags={"non_inventory"})
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "5", "2", "2024-01-01"),
                f.sale(
                    "INV-1",
                    "2024-02-01",
                    line(1, "2", "50", sku=None, kind="service"),
                    line(2, "1", "7.5", kind="shipping"),
                    line(3, "1", "12", sku=None, kind="non_inventory"),
                ),
                f.sale("CM-1", "2024-02-02", line(1, "1", "20", sku=None, kind="service"), sale_type="credit_memo"),
            ],
            Expect(
                lines={
                    L("INV-1", 1): dict(kind="service", revenue="50", **non_inv),
                    L("INV-1", 2): dict(kind="shipping", revenue="7.5", **non_inv),
                    L("INV-1", 3): dict(kind="non_inventory", revenue="12", **non_inv),
                    L("CM-1", 1, "credit_memo"): dict(kind="service", revenue="-20", **non_inv),
                },
                sales={
                    S("INV-1"): dict(revenue="69.5", cost="0"),
                    S("CM-1", "credit_memo"): dict(revenue="-20", cost="0"),
                },
                lots={("W", "L1"): dict(remaining="5")},
                absent=[("lots", ("W", "RET-quickbooks-CM-1-1"))],
            ),
        )
    ]


def lot_correction_recosts(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # Step 1: L1 10 @ 2; INV-1 qty 4 -> 8
    # Step 2: L1 corrected (v2) to 3 @ 2.5: L1 3 (7.5) + shortage 1 * WAC 2.5 = 10
    # Step 3: a stale v1 of L1 (another event) changes nothing
    corrected = Expect(
        lines={L("INV-1", 1): dict(cost="10", shortage_qty="1", allocations={"L1": "3"}, flags={"shortage"})},
        lots={("W", "L1"): dict(quantity="3", unit_cost="2.5", remaining="0")},
    )
    return [
        Step(
            [f.product(), f.lot("L1", "10", "2", "2024-01-01"), f.sale("INV-1", "2024-02-01", line(1, "4", "40"))],
            Expect(lines={L("INV-1", 1): dict(cost="8")}, lots={("W", "L1"): dict(remaining="6")}),
        ),
        Step([f.lot("L1", "3", "2.5", "2024-01-01", version=2, corrected=True)], corrected),
        Step([f.lot("L1", "10", "2", "2024-01-01")], corrected),
    ]


def worked_example(t: uuid.UUID) -> list[Step]:
    f = Facts(t)
    # docs/costing.md §6.1 (and the README's table): L1 10 @ 2.00 (Jan 1), L2 10 @ 3.00 (Jan 10), WAC 2.50.
    # 1. A (Feb 1) 12: L1 10 (20) + L2 2 (6) = 26
    # 2. B (Feb 3) 10: L2 8 (24) + 2 short * 2.50 (5) = 29
    # 3. Z (Jan 20, synced late) 1: L1 1 = 2; A [1,13) L1 9 + L2 3 = 27; B [13,23) L2 7 (21) + 3 short (7.50) = 28.50
    # 4. L3 5 @ 4.00 (Feb 5), WAC 70 / 25 = 2.80: B L2 7 (21) + L3 3 (12) = 33, no shortage; L3 keeps 2
    # 5. A voided: Z [0,1) L1 1 = 2; B [1,11) L1 9 (18) + L2 1 (3) = 21; L2 keeps 9, L3 5
    return [
        Step(
            [
                f.product(),
                f.lot("L1", "10", "2.00", "2026-01-01"),
                f.lot("L2", "10", "3.00", "2026-01-10"),
                f.sale("A", "2026-02-01", line(1, "12", "120.00")),
            ],
            Expect(
                lines={L("A", 1): dict(cost="26", allocations={"L1": "10", "L2": "2"}, flags=NONE)},
                sales={S("A"): dict(revenue="120.00", cost="26")},
            ),
        ),
        Step(
            [f.sale("B", "2026-02-03", line(1, "10", "100.00"))],
            Expect(lines={L("B", 1): dict(cost="29", shortage_qty="2", allocations={"L2": "8"}, flags={"shortage"})}),
        ),
        Step(
            [f.sale("Z", "2026-01-20", line(1, "1", "10.00"))],
            Expect(
                lines={
                    L("Z", 1): dict(cost="2", allocations={"L1": "1"}),
                    L("A", 1): dict(cost="27", allocations={"L1": "9", "L2": "3"}),
                    L("B", 1): dict(cost="28.50", shortage_qty="3", allocations={"L2": "7"}, flags={"shortage"}),
                }
            ),
        ),
        Step(
            [f.lot("L3", "5", "4.00", "2026-02-05")],
            Expect(
                lines={L("B", 1): dict(cost="33", shortage_qty="0", allocations={"L2": "7", "L3": "3"}, flags=NONE)},
                lots={("W", "L3"): dict(remaining="2")},
            ),
        ),
        Step(
            [f.remove("A", "voided")],
            Expect(
                sales={S("A"): dict(status="voided", revenue="0", cost="0")},
                lines={
                    L("Z", 1): dict(cost="2", allocations={"L1": "1"}),
                    L("B", 1): dict(cost="21", shortage_qty="0", allocations={"L1": "9", "L2": "1"}),
                },
                lots={
                    ("W", "L1"): dict(remaining="0"),
                    ("W", "L2"): dict(remaining="9"),
                    ("W", "L3"): dict(remaining="5"),
                },
            ),
        ),
    ]


CASES: dict[str, Callable[[uuid.UUID], list[Step]]] = {
    fn.__name__: fn
    for fn in (
        fifo_across_lots,
        same_received_at_by_lot_number,
        shortage_at_wac,
        no_cost_basis,
        standard_cost_without_lots,
        shortage_resolved_by_later_lot,
        credit_memo_return_lot_consumed,
        void_restores_lots,
        edit_recosts,
        stale_version_ignored,
        delete_is_terminal,
        backdated_sale_recosts_later,
        unmapped_becomes_inventory,
        non_inventory_lines,
        lot_correction_recosts,
        worked_example,
    )
}


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", CASES)
def test_case(name: str) -> None:
    delivered: list[Event] = []
    for number, step in enumerate(CASES[name](uuid.uuid4()), start=1):
        delivered.extend(step.events)
        found = problems(compute(delivered), step.expect)
        assert not found, f"step {number}:\n" + "\n".join(found)


@pytest.mark.parametrize("name", CASES)
def test_case_independent_of_order_and_duplicates(name: str) -> None:
    """Each step's state depends only on the facts: reversed and doubled delivery gives the same state."""
    delivered: list[Event] = []
    for step in CASES[name](uuid.uuid4()):
        delivered.extend(step.events)
        assert compute(list(reversed(delivered)) + delivered) == compute(delivered)


def test_duplicate_event_is_counted_once() -> None:
    f = Facts(uuid.uuid4())
    lot = f.lot("L1", "10", "2", "2024-01-01")
    sale = f.sale("INV-1", "2024-02-01", line(1, "4", "40"))
    state = compute([f.product(), lot, lot, sale, sale])
    assert state.lines[L("INV-1", 1)].cost == Decimal("8")
    assert state.lots[("W", "L1")].remaining == Decimal("6")


def test_margin_is_revenue_minus_cost() -> None:
    f = Facts(uuid.uuid4())
    state = compute(
        [f.product(), f.lot("L1", "10", "2", "2024-01-01"), f.sale("INV-1", "2024-02-01", line(1, "4", "40"))]
    )
    assert state.sales[S("INV-1")].margin == Decimal("32")


def test_states_compare_by_value() -> None:
    f = Facts(uuid.uuid4())
    events = [f.product(), f.lot("L1", "10", "2.0", "2024-01-01"), f.sale("INV-1", "2024-02-01", line(1, "4", "40"))]
    other = [e.model_copy(update={"unit_cost": Decimal("2.000")}) if isinstance(e, LotReceived) else e for e in events]
    assert compute(events) == compute(other)


# --------------------------------------------------------------------------- properties of the model


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_model_depends_only_on_the_facts(data: st.DataObject) -> None:
    facts, delivered = data.draw(history(uuid.uuid4()), label="history")
    assert compute(delivered) == compute(facts)
    again = data.draw(deliveries(facts), label="another delivery")
    assert compute(again) == compute(facts)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_model_invariants(data: st.DataObject) -> None:
    tenant = uuid.uuid4()
    facts, _ = data.draw(history(tenant), label="history")
    state = compute(facts)
    for lot in state.lots.values():
        assert 0 <= lot.remaining <= lot.quantity
    taken: dict[str, Decimal] = {}
    for key, line_state in state.lines.items():
        assert all(qty > 0 for qty in line_state.allocations.values())
        sale = state.sales[key[:3]]
        if sale.status != "posted":
            removed = (line_state.revenue, line_state.cost, line_state.allocations, line_state.flags)
            assert removed == (0, 0, {}, frozenset())
        elif line_state.kind == "inventory" and key[1] != "credit_memo":
            assert sum(line_state.allocations.values(), Decimal(0)) + line_state.shortage_qty == line_state.quantity
            assert ("shortage" in line_state.flags) == (line_state.shortage_qty > 0)
        for lot_number, qty in line_state.allocations.items():
            taken[lot_number] = taken.get(lot_number, Decimal(0)) + qty
    for (_, lot_number), lot in state.lots.items():
        assert lot.quantity - lot.remaining == taken.get(lot_number, Decimal(0))
    for key, sale in state.sales.items():
        own = [v for k, v in state.lines.items() if k[:3] == key]
        assert sale.revenue == sum((v.revenue for v in own), Decimal(0))
        assert sale.cost == sum((v.cost for v in own), Decimal(0))


def test_retenant_keeps_duplicates_and_changes_ids() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    f = Facts(a)
    lot = f.lot("L1", "1", "1", "2024-01-01")
    copied = retenant([lot, f.product(), lot], b)
    assert copied[0] is copied[2]
    assert copied[0].tenant_id == b and copied[0].event_id != lot.event_id
    assert len({e.event_id for e in copied}) == 2
