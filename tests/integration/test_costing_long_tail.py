"""The engine's choice of where to re-cost a tail: a backdated sale before more than
recost.RECOST_TAIL_IN_DB_FROM lines is re-costed inside PostgreSQL, in-order sales are not,
and the result is the full recomputation's (tests/reference_model.py)."""

from __future__ import annotations

from decimal import Decimal

from services.costing import recost
from services.costing.repository import CostingRepository
from tests.projection import project
from tests.reference_model import compute, diff_states
from tests.unit.test_reference_model import Facts, L, line


async def test_a_long_tail_is_recosted_in_the_database(pool, costing, tenant_id, monkeypatch) -> None:
    recosted: list[int] = []
    original = CostingRepository.recost_tail_in_db

    async def recording(self, product_id, *args):
        recosted.append(product_id)
        return await original(self, product_id, *args)

    monkeypatch.setattr(CostingRepository, "recost_tail_in_db", recording)
    n = recost.RECOST_TAIL_IN_DB_FROM + 10
    f = Facts(tenant_id)
    events = [f.product(), f.lot("L1", str(n), "2", "2024-01-01"), f.lot("L2", str(n), "3", "2024-01-02")]
    events += [f.sale(f"INV-{k}", "2024-02-02", line(1, "1", "10")) for k in range(n)]
    for event in events:
        assert await costing.apply(event) is True
    assert recosted == [], "in-order sales re-cost their own lines in Python"

    # Three units before all n sales: the last three move from L1 (2) onto L2 (3).
    events.append(f.sale("EARLY", "2024-02-01", line(1, "3", "30")))
    assert await costing.apply(events[-1]) is True
    assert len(recosted) == 1, "the backdated sale's tail is re-costed in the database"
    state = await project(pool, tenant_id)
    expected = compute(events)
    assert state == expected, diff_states(expected, state)
    assert state.lines[L("EARLY", 1)].cost == Decimal("6")
    assert state.lines[L(f"INV-{n - 4}", 1)].cost == Decimal("2")
    assert state.lines[L(f"INV-{n - 1}", 1)].cost == Decimal("3")
