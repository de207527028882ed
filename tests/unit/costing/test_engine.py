"""The FIFO engine without a database: fifo.py, the planner (recost.py), the orders
(order.py) and the flags rule (flags.py), called directly, on every rule of the costing
doc (docs/costing.md §2, §6) and its worked example."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from services.costing import fifo, recost
from services.costing.flags import FLAG_RULES, flags_sql, line_flags
from services.costing.order import DEMAND_ORDER, demand_columns, demand_key_of, demand_params, supply_key

T = datetime(2026, 1, 1, tzinfo=UTC)


def cost_all(lots: list[tuple[str, D, D]], lines: list[tuple[str, D]], standard_cost: D | None = None):
    """Full FIFO of one product with the engine: lots (name, qty, unit cost) and lines
    (name, qty), each in axis order. {line: (cost, shortage, {lot: qty}, flags)}, WAC."""
    received_qty = sum((q for _, q, _ in lots), D(0))
    received_value = sum((q * c for _, q, c in lots), D(0))
    wac, has_basis = fifo.wac(received_qty, received_value, standard_cost)
    placed_lots = [fifo.Placed(i, q) for i, (_, q, _) in enumerate(lots)]
    placed_lines = [fifo.Placed(i, q) for i, (_, q) in enumerate(lines)]
    supply_end = fifo.lay_out(placed_lots, D(0))
    fifo.lay_out(placed_lines, D(0))
    results = fifo.allocate(placed_lines, placed_lots, supply_end)
    out = {}
    for i, (name, _) in enumerate(lines):
        res = results[i]
        cost, _ = fifo.line_cost(((a.quantity, lots[a.lot_id][2]) for a in res.allocations), res.shortage, wac)
        out[name] = (
            cost,
            res.shortage,
            {lots[a.lot_id][0]: a.quantity for a in res.allocations},
            line_flags("inventory", res.shortage, has_basis, False, True),
        )
    return out, wac


L1, L2, L3 = ("L1", D(10), D("2.00")), ("L2", D(10), D("3.00")), ("L3", D(5), D("4.00"))


class TestReadmeExample:
    """README "Costing rules": lots of W-1 L1 10 @ 2.00 (Jan 1), L2 10 @ 3.00 (Jan 10); WAC 2.50."""

    def test_wac(self):
        assert cost_all([L1, L2], [])[1] == D("2.50")

    def test_invoice_a_takes_10_from_l1_and_2_from_l2(self):
        lines, _ = cost_all([L1, L2], [("A", D(12))])
        assert lines["A"] == (D("26.00"), 0, {"L1": 10, "L2": 2}, [])
        assert D("120.00") - lines["A"][0] == D("94.00")  # margin at 12 × 10.00

    def test_invoice_b_is_short_2_at_wac(self):
        lines, _ = cost_all([L1, L2], [("A", D(12)), ("B", D(10))])
        assert lines["B"] == (D("29.00"), 2, {"L2": 8}, ["shortage"])

    def test_backdated_z_recosts_a_and_b(self):
        lines, _ = cost_all([L1, L2], [("Z", D(1)), ("A", D(12)), ("B", D(10))])
        assert lines["Z"][:3] == (D("2.00"), 0, {"L1": 1})
        assert lines["A"][:3] == (D("27.00"), 0, {"L1": 9, "L2": 3})
        assert lines["B"] == (D("28.50"), 3, {"L2": 7}, ["shortage"])

    def test_lot_l3_resolves_b_shortage(self):
        lines, wac = cost_all([L1, L2, L3], [("Z", D(1)), ("A", D(12)), ("B", D(10))])
        assert wac == D("2.80")
        assert lines["B"] == (D("33.00"), 0, {"L2": 7, "L3": 3}, [])

    def test_void_a_returns_its_lots(self):
        lines, _ = cost_all([L1, L2, L3], [("Z", D(1)), ("B", D(10))])
        assert lines["B"] == (D("21.00"), 0, {"L1": 9, "L2": 1}, [])


class TestRules:
    def test_shortage_beyond_all_supply_is_costed_at_wac(self):
        lines, wac = cost_all([("L", D(3), D("1.00")), ("M", D(1), D("5.00"))], [("X", D(6))])
        assert wac == D(2)
        assert lines["X"] == (D("3.00") + D("5.00") + 2 * D(2), 2, {"L": 3, "M": 1}, ["shortage"])

    def test_no_lot_and_no_standard_cost_is_no_cost_basis(self):
        lines, wac = cost_all([], [("X", D(2))])
        assert (wac, lines["X"]) == (0, (0, 2, {}, ["shortage", "no_cost_basis"]))

    def test_no_lot_but_a_standard_cost_is_a_basis(self):
        lines, wac = cost_all([], [("X", D(2))], standard_cost=D("1.25"))
        assert (wac, lines["X"]) == (D("1.25"), (D("2.50"), 2, {}, ["shortage"]))

    def test_received_lots_win_over_the_standard_cost(self):
        assert fifo.wac(D(4), D(10), D(99)) == (D("2.5"), True)

    def test_fractional_quantities(self):
        lines, _ = cost_all(
            [("L", D("1.5"), D("2.00")), ("M", D("0.25"), D("4.00"))], [("X", D("0.75")), ("Y", D("1.1"))]
        )
        assert lines["X"][:3] == (D("1.5"), 0, {"L": D("0.75")})
        assert lines["Y"][1:3] == (D("0.1"), {"L": D("0.75"), "M": D("0.25")})
        # WAC = 4.00 / 1.75, kept to 12 places: 0.75 × 2.00 + 0.25 × 4.00 + 0.1 × 2.285714285714
        assert lines["Y"][0] == D("1.5") + D("1.00") + D("0.1") * D("2.285714285714")

    def test_a_line_spanning_many_lots_and_lots_spanning_many_lines(self):
        lines, _ = cost_all(
            [("L", D(1), D(1)), ("M", D(1), D(2)), ("N", D(4), D(3))], [("X", D(3)), ("Y", D(1)), ("Z", D(1))]
        )
        assert lines["X"][2] == {"L": 1, "M": 1, "N": 1}
        assert (lines["Y"][2], lines["Z"][2]) == ({"N": 1}, {"N": 1})

    def test_consumed_and_interval_overlap(self):
        lot = fifo.Placed(1, D(5), D(10))
        assert (fifo.consumed(lot, D(12)), fifo.consumed(lot, D(3)), fifo.consumed(lot, D(20))) == (2, 0, 5)


def row(**fields):
    base = dict(
        id=1,
        sale_id=7,
        line_no=1,
        kind="inventory",
        quantity=D(2),
        in_demand=True,
        shortage_qty=D(0),
        sale_type="invoice",
        cost=D(0),
        costed=False,
        flags=[],
        d_start=None,
        d_end=None,
    )
    return base | fields


class TestReturnsUnmappedAndFlags:
    def test_a_credit_memo_line_is_valued_at_wac_negative(self):
        price = recost.price_line(
            row(in_demand=False, sale_type="credit_memo", quantity=D(3)), [], D("2.50"), True, posted=True
        )
        assert (price.cost, price.flags) == (D("-7.50"), [])

    def test_a_return_without_cost_basis_says_so(self):
        price = recost.price_line(row(in_demand=False, sale_type="credit_memo"), [], D(0), False, posted=True)
        assert (price.cost, price.flags) == (0, ["no_cost_basis"])

    def test_unmapped_and_non_inventory_lines_cost_nothing_and_say_so(self):
        for kind, flag in [("unmapped", "unmapped"), ("service", "non_inventory"), ("shipping", "non_inventory")]:
            price = recost.price_line(row(in_demand=False, kind=kind), [], D(3), True, posted=True)
            assert (price.cost, price.flags) == (0, [flag])

    def test_a_line_of_a_voided_sale_has_no_flag(self):
        assert recost.price_line(row(in_demand=False, kind="unmapped"), [], D(3), True, posted=False).flags == []

    def test_an_allocated_line_is_priced_from_its_allocations_and_shortage(self):
        price = recost.price_line(row(shortage_qty=D(1)), [(D(1), D(2)), (D(2), D("3.5"))], D(4), True, posted=True)
        assert (price.cost, price.shortage_cost, price.flags) == (D(13), D(4), ["shortage"])

    def test_the_flag_rule(self):
        assert line_flags("inventory", D(1), False, False, True) == ["shortage", "no_cost_basis"]
        assert line_flags("inventory", D(0), False, False, True) == []
        assert line_flags("inventory", D(0), False, True, True) == ["no_cost_basis"]
        assert line_flags("unmapped", D(0), False, False, True) == ["unmapped"]
        assert line_flags("inventory", D(1), True, False, False) == []

    def test_the_sql_flags_come_from_the_same_rules(self):
        sql = flags_sql("l.kind", "c.shortage", "$19")
        assert [flag for flag, _ in FLAG_RULES] == ["unmapped", "non_inventory", "shortage", "no_cost_basis"]
        for flag, _ in FLAG_RULES:
            assert f"THEN '{flag}' END" in sql
        assert "NOT $19" in sql and "l.kind IN ('non_inventory', 'service', 'shipping')" in sql


class TestOrders:
    def test_numeric_external_ids_sort_numerically_and_sale_type_breaks_the_tie(self):
        day, created = date(2026, 2, 1), T
        keys = [
            demand_key_of(day, created, "quickbooks", "1000", "invoice", 1),
            demand_key_of(day, created, "quickbooks", "101", "sales_receipt", 1),
            demand_key_of(day, created, "quickbooks", "101", "invoice", 2),
            demand_key_of(day, created, "quickbooks", "101", "invoice", 1),
        ]
        assert sorted(keys) == keys[::-1]

    def test_the_date_comes_first(self):
        assert demand_key_of(date(2026, 1, 20), T, "m", "9", "invoice", 1) < demand_key_of(
            date(2026, 2, 1), T, "a", "1", "invoice", 1
        )

    def test_sql_fragments_follow_the_one_order(self):
        assert demand_columns("l").split(", ") == [f"l.{c}" for c in DEMAND_ORDER]
        assert demand_params(2) == "($2, $3, $4, $5, $6, $7, $8)"
        assert supply_key({"received_at": T, "lot_number": "L1", "id": 3}) == (T, "L1")


class TestPlanner:
    def change(self, **row_fields):
        product = (
            dict(
                id=1,
                received_qty=D(20),
                received_value=D(50),
                standard_cost=None,
                wac=D("2.5"),
                has_cost_basis=True,
                demand_total=D(22),
                supply_total=D(20),
            )
            | row_fields
        )
        return recost.ProductChange.of(product, ("cause", uuid.uuid4()))

    def test_the_earliest_touch_wins_with_its_cause(self):
        change = self.change()
        late, early = (
            demand_key_of(date(2026, 2, 3), T, "m", "B", "invoice", 1),
            demand_key_of(date(2026, 1, 20), T, "m", "Z", "invoice", 1),
        )
        change.touch_demand(late, ("B", uuid.uuid4()))
        change.touch_demand(early, ("Z", uuid.uuid4()))
        assert change.demand_from == early and change.demand_cause[0] == "Z"
        assert recost.tail_cause(change, D(0), None, ("default", uuid.uuid4()))[1][0] == "Z"

    def test_settle_cost_basis_reports_a_change_of_wac(self):
        change = self.change()
        assert change.settle_cost_basis() is False
        change.received_qty, change.received_value = D(25), D(70)  # lot L3 5 @ 4.00
        assert change.settle_cost_basis() is True and change.wac == D("2.8")

    def test_a_backdated_line_moves_the_tail(self):
        """Z (1) lands before A (12) and B (10): the tail is laid from Z's position 0."""
        change = self.change()
        change.touch_demand(demand_key_of(date(2026, 1, 20), T, "m", "Z", "invoice", 1))
        rows = [
            row(id=3, quantity=D(1), moves=True),
            row(id=1, quantity=D(12), d_start=D(0), d_end=D(12), moves=True),
            row(id=2, quantity=D(10), d_start=D(12), d_end=D(22), moves=True),
        ]
        lines, demand_end = recost.lay_demand(change, rows, D(0))
        assert [(line.start, line.end) for line in lines] == [(0, 1), (1, 13), (13, 23)] and demand_end == 23
        lot_rows = [
            dict(
                id=10,
                quantity=D(10),
                unit_cost=D(2),
                is_return=False,
                s_start=D(0),
                s_end=D(10),
                remaining=D(0),
                received_at=T,
                lot_number="L1",
            ),
            dict(
                id=11,
                quantity=D(10),
                unit_cost=D(3),
                is_return=False,
                s_start=D(10),
                s_end=D(20),
                remaining=D(0),
                received_at=T,
                lot_number="L2",
            ),
        ]
        supply = recost.lay_supply(change, lot_rows, D("2.5"), None, demand_end)
        assert supply.writes == [] and supply.supply_end == 20
        results = fifo.allocate(lines, supply.lots, supply.supply_end)
        prices = recost.price_tail(lines, results, supply.unit_costs, [r["kind"] for r in rows], D("2.5"), True)
        assert [p.cost for p in prices] == [D(2), D(27), D("28.5")]
        deletes, inserts = recost.allocation_changes([r | {"lot_ids": None, "quantities": None} for r in rows], results)
        assert deletes == [] and sorted(inserts) == [(1, 10, 9), (1, 11, 3), (2, 11, 7), (3, 10, 1)]

    def test_line_writes_record_revisions_and_move_sale_totals(self):
        a = row(id=1, sale_id=7, cost=D(26), costed=True, d_start=D(0), d_end=D(12))
        price = recost.LinePrice(D(27), D(0), D(0), [])
        cause = ("invoice Z", uuid.uuid4())
        plan = recost.line_writes([(a, price, cause)], {1: (D(1), D(13))}, resummed=set())
        assert plan.lines == [(1, True, D(1), D(13), D(27), D(0), D(0), "")]
        assert plan.revisions == [(7, 1, D(26), D(27), *cause)]
        assert plan.deltas == [(7, D(1), False)]
        unchanged = recost.line_writes([(a, recost.LinePrice(D(26), D(0), D(0), []), cause)], {}, set())
        assert (unchanged.lines, unchanged.revisions, unchanged.deltas) == ([], [], [])

    @pytest.mark.parametrize("length, in_db", [(0, False), (50, False), (51, True)])
    def test_long_tails_go_to_the_database(self, length, in_db):
        assert recost.in_database(length) is in_db


ENGINE = ["fifo.py", "recost.py", "order.py", "flags.py"]
IO = {
    "asyncpg",
    "aio_pika",
    "aiohttp",
    "services.costing.repository",
    "services.costing.tail",
    "shared.db",
    "shared.broker",
}


@pytest.mark.parametrize("module", ENGINE)
def test_engine_modules_import_no_io(module):
    tree = ast.parse((Path(fifo.__file__).parent / module).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not {m for m in imported if any(m == io or m.startswith(io + ".") for io in IO)}
