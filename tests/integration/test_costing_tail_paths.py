"""The two implementations of the tail re-cost, Python (tail.py + recost.py + fifo.py)
and one statement inside PostgreSQL (repository.RECOST_TAIL_IN_DB), are one rule: the
same histories run through both, and the results are compared line for line (positions,
cost, shortage and its cost, flags, allocations), with the lots, the sale totals and the
cost revisions. (Both are kept only because the benchmark needs the SQL one for long tails.)"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.costing import recost
from shared.events import Event
from tests.conftest import new_tenant
from tests.histories import history as seeded_history
from tests.integration.test_costing_property import PROPERTY
from tests.strategies import LONG, history, retenant

pytestmark = pytest.mark.timeout(900)

PATHS = {"python": 10**9, "database": 0}  # recost.RECOST_TAIL_IN_DB_FROM: every tail in Python / in PostgreSQL

LINES = """
SELECT s.source, s.type, s.external_id, l.line_no, l.kind, l.in_demand, l.d_start, l.d_end, l.cost, l.shortage_qty,
       l.shortage_cost, l.flags, l.costed,
       (SELECT coalesce(array_agg(lot.lot_number || '=' || a.quantity::text ORDER BY lot.lot_number), '{}')
        FROM allocations a JOIN lots lot ON lot.id = a.lot_id WHERE a.line_id = l.id) AS allocations
FROM sale_lines l JOIN sales s ON s.id = l.sale_id WHERE l.tenant_id = $1"""
LOTS = """
SELECT p.sku, lot.lot_number, lot.s_start, lot.s_end, lot.remaining, lot.unit_cost
FROM lots lot JOIN products p ON p.id = lot.product_id WHERE lot.tenant_id = $1"""
SALES = "SELECT source, type, external_id, status, revenue, cost, has_shortage FROM sales WHERE tenant_id = $1"
PRODUCTS = "SELECT sku, wac, has_cost_basis, demand_total, supply_total FROM products WHERE tenant_id = $1"
REVISIONS = """
SELECT s.external_id, r.line_no, r.old_cost, r.new_cost, r.cause FROM cost_revisions r JOIN sales s ON s.id = r.sale_id
WHERE r.tenant_id = $1"""


async def _state(pool, tenant_id: uuid.UUID) -> dict:
    """Everything both paths write, keyed by the facts (never by database ids)."""
    async with pool.acquire() as conn:
        return {
            "lines": {tuple(r.values())[:4]: tuple(r.values())[4:] for r in await conn.fetch(LINES, tenant_id)},
            "lots": {tuple(r.values())[:2]: tuple(r.values())[2:] for r in await conn.fetch(LOTS, tenant_id)},
            "sales": {tuple(r.values())[:3]: tuple(r.values())[3:] for r in await conn.fetch(SALES, tenant_id)},
            "products": {r["sku"]: tuple(r.values())[1:] for r in await conn.fetch(PRODUCTS, tenant_id)},
            "revisions": Counter(tuple(r.values()) for r in await conn.fetch(REVISIONS, tenant_id)),
        }


async def _run_both(pool, costing, events: list[Event]) -> dict[str, dict]:
    states = {}
    saved = recost.RECOST_TAIL_IN_DB_FROM
    try:
        for path, threshold in PATHS.items():
            recost.RECOST_TAIL_IN_DB_FROM = threshold
            tenant_id = await new_tenant(pool, f"tail-{path}")
            for event in retenant(events, tenant_id):
                await costing.apply(event)
            states[path] = await _state(pool, tenant_id)
    finally:
        recost.RECOST_TAIL_IN_DB_FROM = saved
    return states


def _assert_same(states: dict[str, dict]) -> None:
    python, database = states["python"], states["database"]
    for part in python:
        if python[part] != database[part]:
            keys = set(python[part]) | set(database[part])
            diffs = [
                f"{k}: python {python[part].get(k)} / database {database[part].get(k)}"
                for k in sorted(keys, key=repr)
                if python[part].get(k) != database[part].get(k)
            ]
            raise AssertionError(f"tail re-cost paths differ in {part}:\n" + "\n".join(diffs[:30]))


@PROPERTY
@given(data=st.data())
async def test_python_and_database_tail_recost_agree_line_for_line(pool, costing, data) -> None:
    size = data.draw(st.sampled_from(["small", "long"]), label="size")
    _, delivered = data.draw(
        history(uuid.uuid4(), LONG) if size == "long" else history(uuid.uuid4()), label="(facts, deliveries)"
    )
    _assert_same(await _run_both(pool, costing, delivered))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_seeded_histories_with_long_tails_agree_line_for_line(pool, costing, seed) -> None:
    """60 sales with backdates, edits, voids and credit memos on two products: tails of
    dozens of lines, each re-costed both ways."""
    _assert_same(await _run_both(pool, costing, seeded_history(uuid.uuid4(), seed)))
