"""The in-process rebuild (``services.costing.rebuild.rebuild_in_process``) reaches the
state the live engine reached applying the same log in its own order: the canonical
projection is identical, and a second delivery of any logged event is a duplicate."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.costing.rebuild import RebuildStats, rebuild_in_process
from shared.events import Event
from tests.histories import history as seeded_history
from tests.histories import log_events
from tests.projection import project
from tests.strategies import history

PROPERTY = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
pytestmark = [pytest.mark.timeout(900), pytest.mark.usefixtures("tail_recost")]


async def _tenant(pool) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    await pool.execute("INSERT INTO tenants (id, name, home_currency) VALUES ($1, 'rebuild', 'USD')", tenant_id)
    return tenant_id


async def _live_then_rebuild(
    pool, costing, tenant_id: uuid.UUID, delivered: list[Event], batch: int, vacuum_after: int = 10**9
) -> RebuildStats:
    """Log the events in delivery order (first delivery logs), apply them one by one as the
    live consumers would, then rebuild in process and compare."""
    logged: dict[uuid.UUID, Event] = {}
    for event in delivered:
        logged.setdefault(event.event_id, event)
        await costing.apply(event)
    events = list(logged.values())
    await log_events(pool, events)
    before = await project(pool, tenant_id)
    stats = await rebuild_in_process(pool, tenant_id, batch=batch, vacuum_after=vacuum_after)
    assert stats.failed == 0
    assert stats.applied == len(events)
    after = await project(pool, tenant_id)
    assert after == before
    for event in events:  # everything logged is in the inbox again
        assert await costing.apply(event) is False
    return stats


@PROPERTY
@given(data=st.data())
async def test_rebuild_in_process_equals_the_live_state(pool, costing, data) -> None:
    tenant_id = await _tenant(pool)
    _, delivered = data.draw(history(tenant_id), label="(facts, deliveries)")
    batch = data.draw(st.sampled_from([1, 3, 1000]), label="batch")
    await _live_then_rebuild(pool, costing, tenant_id, delivered, batch)


async def test_rebuild_in_process_of_a_longer_history(pool, costing) -> None:
    """Backdating, edits, voids, deletes and credit memos on few products (tests/histories.py)."""
    tenant_id = await _tenant(pool)
    other = await _tenant(pool)
    await _live_then_rebuild(pool, costing, other, seeded_history(other, seed=7, sales=120), 50)
    other_before = await project(pool, other)
    await _live_then_rebuild(pool, costing, tenant_id, seeded_history(tenant_id, seed=3, sales=400), 64)
    assert await project(pool, other) == other_before  # other tenants untouched


async def test_rebuild_after_a_large_reset_vacuums_and_reaches_the_same_state(pool, costing) -> None:
    """A reset that deletes at least ``vacuum_after`` rows is followed by a VACUUM of the
    tables (here at any size); the result is the same, and a second rebuild of an already
    rebuilt tenant needs none when the threshold is not reached."""
    tenant_id = await _tenant(pool)
    history = seeded_history(tenant_id, seed=5, sales=150)
    first = await _live_then_rebuild(pool, costing, tenant_id, history, 40, vacuum_after=1)
    assert "vacuum" in first.phases
    before = await project(pool, tenant_id)
    second = await rebuild_in_process(pool, tenant_id, batch=40)  # the default threshold: 100,000 rows
    assert "vacuum" not in second.phases
    assert await project(pool, tenant_id) == before
