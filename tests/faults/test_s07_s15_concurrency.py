"""Concurrency faults (docs/reliability.md §7.3).

S7 — contention: many transactions on the same products at once, under the default isolation
and under SERIALIZABLE. Holds I1–I3, I9; the deadlock count of the database (pg_stat_database,
40P01) stays 0 under the engine's sorted locking; every 40001 is retried to success.

S15 — a handler slower than the broker's consumer timeout. RabbitMQ 3.10 has no per-queue
consumer timeout (the ``x-consumer-timeout`` argument and the ``consumer-timeout`` policy key
came with 3.12; 3.10 has only the node-wide ``consumer_timeout``, 30 min, which a test must not
change on the shared broker), so the effect is simulated: the same event is delivered to two
consumers at once, each holding its transaction open (a slowed inbox write), and one
consumer's channel is lost while it holds its transaction, so the broker gives its messages
to the other while the first still commits and its late ack fails. Holds: exactly one commit
per event (the inbox key), the other a no-op (I4, I9), consumers recover (I10)."""

from __future__ import annotations

import asyncio
import random

from services.costing.main import running_consumer
from services.costing.repository import CostingRepository
from services.costing.service import CostingService
from shared.db import create_pool
from tests.conftest import TEST_AMQP_URL, settings_for, wait_for
from tests.faults.harness import check, queue_counts
from tests.histories import history
from tests.metrics import handled, retries


async def _deadlocks(pool) -> int:
    return await pool.fetchval("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")


async def _contend(pool, service_pool, harness, tenant_id, seed: int, sales: int) -> int:
    """Every event of a history applied at once (products first), with 10 duplicates."""
    costing = CostingService(service_pool)
    events = history(tenant_id, seed=seed, sales=sales)
    products = [e for e in events if e.event_type == "product.upserted"]
    rest = [e for e in events if e.event_type != "product.upserted"]
    for event in products:
        await costing.apply(event)
    random.Random(seed).shuffle(rest)
    before = await _deadlocks(pool)
    results = await asyncio.gather(*(costing.apply(e) for e in rest + rest[:10]))
    assert sum(results) == len(rest)  # every event applied once, the duplicates not at all
    harness.history.sent(products + rest + rest[:10])
    harness.history.fault("concurrent transactions", len(rest) + 10)
    await asyncio.sleep(1.2)  # backends flush their statistics about once a second
    return await _deadlocks(pool) - before


async def test_contention_under_sorted_locking_causes_no_deadlock(pool, service_pool, tenant_id, harness, mode):
    seed = mode.seed(71)
    deadlocks = await _contend(pool, service_pool, harness, tenant_id, seed, mode.size(60, 600))
    assert deadlocks == 0
    await check(pool, harness.history, "S7 contention (read committed)", seed=seed, extra={"deadlocks_40P01": 0})


async def test_contention_under_serializable_retries_every_40001_to_success(
    pool, database_url, tenant_id, harness, mode
):
    seed = mode.seed(72)
    serializable = await create_pool(f"{database_url}?default_transaction_isolation=serializable", max_size=12)
    contention = retries("contention")
    try:
        deadlocks = await _contend(pool, serializable, harness, tenant_id, seed, mode.size(40, 400))
    finally:
        await serializable.close()
    assert deadlocks == 0
    retried = int(retries("contention") - contention)
    extra = {"deadlocks_40P01": deadlocks, "serialization_retries": retried}
    await check(pool, harness.history, "S7 contention (serializable)", seed=seed, extra=extra)


async def test_the_same_event_running_twice_at_once_applies_once(
    pool, database_url, tenant_id, topology, broker_prefix, harness, mode, monkeypatch
):
    seed = mode.seed(151)
    events = history(tenant_id, seed=seed, sales=mode.size(40, 400))
    record = CostingRepository.record_events

    async def slow_record(self, events):  # the transaction is held open after its inbox rows
        new = await record(self, events)
        await asyncio.sleep(0.05)
        return new

    monkeypatch.setattr(CostingRepository, "record_events", slow_record)
    proxy, amqp_url = await harness.proxy(TEST_AMQP_URL, "reconnect_interval=0.5")
    first = settings_for(database_url, broker_prefix, amqp_url=amqp_url, costing_batch_size=1, costing_prefetch=20)
    second = settings_for(database_url, broker_prefix, costing_batch_size=1, costing_prefetch=20)
    duplicates = handled(events, "duplicate")
    deliveries = [e for event in events for e in (event, event)]  # each event twice, back to back
    async with running_consumer(first), running_consumer(second):
        await harness.history.publish(topology.exchange, deliveries)
        for share in (0.3, 0.6):
            await wait_for(lambda share=share: _applied_at_least(pool, tenant_id, int(len(events) * share)), 60)
            proxy.cut()  # the first consumer loses its channel with transactions open
            harness.history.fault("consumer channel lost mid-transaction")
            await asyncio.sleep(0.2)
            proxy.restore()
        await wait_for(lambda: _applied_at_least(pool, tenant_id, len(events)), timeout=120)
        await wait_for(lambda: _drained(harness), timeout=60)
        await wait_for(lambda: _consumers(harness, 2), timeout=30)
    absorbed = int(handled(events, "duplicate") - duplicates)
    assert absorbed >= len(events) - 20  # nearly every second copy met its first one's inbox row
    await check(pool, harness.history, "S15 same event twice at once", seed=seed, duplicates_absorbed=absorbed)


async def _applied_at_least(pool, tenant_id, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id) >= n


async def _drained(harness) -> bool:
    return (await queue_counts(harness.names))[harness.names.costing_queue]["ready"] == 0


async def _consumers(harness, n: int) -> bool:
    return (await queue_counts(harness.names))[harness.names.costing_queue]["consumers"] == n
