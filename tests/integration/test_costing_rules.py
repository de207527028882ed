"""The hand-computed costing cases, fed through the real engine (CostingService.apply)
and read back from PostgreSQL. The expected numbers are the ones written out in
``tests/unit/test_reference_model.py`` (docs/costing.md §2, §3), not computed here."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.projection import project
from tests.reference_model import diff_states
from tests.unit.test_reference_model import CASES, Facts, L, S, line, problems

# Every case with tails re-costed both ways (the `tail_recost` fixture).
pytestmark = pytest.mark.usefixtures("tail_recost")


@pytest.mark.parametrize("name", CASES)
async def test_case(name, pool, costing, tenant_id) -> None:
    for number, step in enumerate(CASES[name](tenant_id), start=1):
        for event in step.events:
            assert await costing.apply(event) is True, f"step {number}: {event.event_type} was not applied"
        found = problems(await project(pool, tenant_id), step.expect)
        assert not found, f"{name}, step {number}:\n" + "\n".join(found)


async def test_duplicate_event_is_a_no_op(pool, costing, tenant_id) -> None:
    f = Facts(tenant_id)
    # L1 10 @ 2; INV-1 qty 4 -> 4 * 2 = 8; L1 remaining 6. Then INV-1 voided: cost 0, L1 remaining 10.
    events = [
        f.product(),
        f.lot("L1", "10", "2", "2024-01-01"),
        f.sale("INV-1", "2024-02-01", line(1, "4", "40")),
    ]
    for event in events:
        assert await costing.apply(event) is True
    before = await project(pool, tenant_id)
    assert before.lines[L("INV-1", 1)].cost == Decimal("8")
    assert before.lots[("W", "L1")].remaining == Decimal("6")

    for event in reversed(events):
        assert await costing.apply(event) is False
    after = await project(pool, tenant_id)
    assert after == before, diff_states(before, after)

    void = f.remove("INV-1", "voided")
    assert await costing.apply(void) is True
    voided = await project(pool, tenant_id)
    assert voided.sales[S("INV-1")].status == "voided"
    assert voided.lots[("W", "L1")].remaining == Decimal("10")
    # the same void again, and the original sale again: nothing changes
    assert await costing.apply(void) is False
    assert await costing.apply(events[2]) is False
    again = await project(pool, tenant_id)
    assert again == voided, diff_states(voided, again)
