"""S8 — PostgreSQL faults mid-transaction, destructive ones on a throwaway cluster
(tests/faults/conftest.py ``scratch``): a ``statement_timeout`` that cancels statements of
the costing transactions, and ``pg_ctl -m immediate`` stop and start mid-stream. Holds: no
ack for uncommitted work (I6: lost = 0), I9 (nothing applied and parked), a retried
transaction gives the reference state, the pool recovers (I10)."""

from __future__ import annotations

import asyncio

import pytest

from services.costing.main import running_consumer
from shared.db import create_pool
from tests.conftest import new_tenant, settings_for, wait_for
from tests.faults.harness import check
from tests.histories import history
from tests.metrics import handled, retries

SLOW_INSERTS = """
DROP SEQUENCE IF EXISTS fault_slow; CREATE SEQUENCE fault_slow;  -- nextval survives the rollback
CREATE OR REPLACE FUNCTION fault_slow_insert() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF nextval('fault_slow') <= $1 THEN PERFORM pg_sleep(0.4); END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS fault_slow ON processed_events;
CREATE TRIGGER fault_slow BEFORE INSERT ON processed_events FOR EACH ROW EXECUTE FUNCTION fault_slow_insert();
"""


@pytest.fixture
async def scratch_pool(scratch):
    _, owner_url, _ = scratch
    pool = await create_pool(owner_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def _applied(pool, tenant_id, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id) >= n


async def test_statement_timeouts_are_retried_not_parked(scratch, scratch_pool, harness, mode):
    """Statements cancelled by ``statement_timeout`` (57014) are retried like contention; before
    the fix they were permanent errors and the events were dead-lettered."""
    _, owner_url, service_url = scratch
    tenant_id = await new_tenant(scratch_pool)
    slow = mode.size(6, 40)
    await scratch_pool.execute(SLOW_INSERTS.replace("$1", str(slow)))
    events = history(tenant_id, seed=mode.seed(81), sales=mode.size(20, 200))
    settings = settings_for(f"{service_url}?statement_timeout=150", harness.names.prefix, database_owner_url=owner_url)
    retried = retries("contention")
    try:
        async with running_consumer(settings) as (_consumer, _app, topology):
            await harness.history.publish(topology.exchange, events)
            await wait_for(lambda: _applied(scratch_pool, tenant_id, len(events)), timeout=120)
            await wait_for(lambda: _drained(harness), timeout=30)
    finally:
        await scratch_pool.execute("DROP TRIGGER IF EXISTS fault_slow ON processed_events")
    harness.history.fault("statement_timeout", int(retries("contention") - retried))
    assert retries("contention") - retried >= slow
    await check(scratch_pool, harness.history, "S8 statement_timeout", seed=81)


async def test_an_immediate_postgresql_stop_mid_stream_loses_and_doubles_nothing(scratch, scratch_pool, harness, mode):
    cluster, owner_url, service_url = scratch
    tenant_id = await new_tenant(scratch_pool)
    events = history(tenant_id, seed=mode.seed(82), sales=mode.size(150, 1500))
    settings = settings_for(service_url, harness.names.prefix, database_owner_url=owner_url, costing_batch_size=1)
    duplicates = handled(events, "duplicate")
    async with running_consumer(settings) as (_consumer, _app, topology):
        await harness.history.publish(topology.exchange, events)
        for share in (0.3, 0.6)[: mode.size(1, 2)]:
            await wait_for(lambda share=share: _applied(scratch_pool, tenant_id, int(len(events) * share)), timeout=60)
            await scratch_pool.expire_connections()
            await asyncio.to_thread(cluster.stop, "immediate")  # no shutdown checkpoint: crash recovery on start
            harness.history.fault("postgresql immediate stop")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(cluster.start)
        await wait_for(lambda: _applied(scratch_pool, tenant_id, len(events)), timeout=60)
        await wait_for(lambda: _drained(harness), timeout=30)
    await check(
        scratch_pool,
        harness.history,
        "S8 immediate stop",
        seed=82,
        duplicates_absorbed=int(handled(events, "duplicate") - duplicates),
    )


async def _drained(harness) -> bool:
    from tests.faults.harness import queue_counts

    return (await queue_counts(harness.names))[harness.names.costing_queue]["ready"] == 0
