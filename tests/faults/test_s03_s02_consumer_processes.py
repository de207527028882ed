"""Costing consumers as processes (docs/reliability.md §7.3): killed at the named crash points
``before_commit`` and ``after_commit_before_ack`` and at random moments (S3: I6, I9, I4, I10),
and several consumers over one shuffled stream with duplicates (S2, S1: I5, I4, I1–I3)."""

from __future__ import annotations

import asyncio
import random

import pytest

from shared.settings import Settings
from tests.conftest import wait_for
from tests.faults.harness import check, queue_counts
from tests.histories import history


async def processed(pool, tenant_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id)


async def _count_is(pool, tenant_id, n) -> bool:
    return await processed(pool, tenant_id) == n


async def _count_above(pool, tenant_id, count: int) -> bool:
    return await processed(pool, tenant_id) > count


async def _queue_empty(harness) -> bool:
    return (await queue_counts(harness.names))[harness.names.costing_queue]["ready"] == 0


async def _finish_with_a_healthy_consumer(pool, harness, tenant_id, events: int) -> None:
    """Run one healthy consumer process until all ``events`` are applied and the queue is
    empty, then stop it with SIGTERM (a graceful stop: exit 0)."""
    healthy = await harness.service("costing").start()
    await wait_for(lambda: _count_is(pool, tenant_id, events), timeout=120)
    await wait_for(lambda: _queue_empty(harness), timeout=30)
    healthy.terminate()
    assert await healthy.wait() == 0


@pytest.mark.parametrize("point", ["before_commit", "after_commit_before_ack"])
async def test_consumer_killed_at_a_crash_point_leaves_no_partial_or_double_effect(
    pool, tenant_id, topology, harness, point
):
    events = history(tenant_id, seed=2, sales=8)
    await harness.history.publish(topology.exchange, events[:1])
    crashing = await harness.service("costing", CRASH_POINT=point).start(ready=False)
    assert await crashing.wait(60) == 137  # died holding an unacked message
    harness.history.fault(point)
    # before the commit: nothing of it stayed (I9); after: committed once, redelivered, absorbed (I4)
    assert await processed(pool, tenant_id) == (1 if point == "after_commit_before_ack" else 0)
    await harness.history.publish(topology.exchange, events[1:])
    await _finish_with_a_healthy_consumer(pool, harness, tenant_id, len(events))
    await check(pool, harness.history, f"S3 crash point {point}", consumers=0)


async def test_consumers_killed_at_random_moments_leave_no_partial_or_double_effect(
    pool, tenant_id, topology, harness, mode
):
    """S3, I9: SIGKILL at whatever the consumer is doing (mid-transaction, between commit and
    ack, idle); a fresh consumer finishes the stream. Fewer kills per consumer generation than
    the queue's delivery limit (5): each kill returns what was held, which counts a delivery."""
    seed = mode.seed(31)
    events = history(tenant_id, seed=seed, sales=mode.size(400, 4000))
    await harness.history.publish(topology.exchange, events)
    rnd = random.Random(seed)
    kills = mode.size(3, 200)
    progress = []
    for n in range(kills):
        if n and n % (Settings().costing_delivery_limit - 2) == 0:
            # a graceful stop in between hands back the held messages as fresh ones (delivery count 0)
            calm = await harness.service("costing", COSTING_BATCH_SIZE="1").start()
            await asyncio.sleep(0.2)
            calm.terminate()
            assert await calm.wait() == 0
        victim = await harness.service("costing", COSTING_BATCH_SIZE="1").start(ready=False)
        start = await processed(pool, tenant_id)
        if start >= len(events):
            await victim.stop()
            break
        await wait_for(lambda start=start: _count_above(pool, tenant_id, start), timeout=60)  # at work ...
        await asyncio.sleep(rnd.uniform(0, 0.1))  # ... somewhere in it
        victim.kill()
        await victim.wait()
        harness.history.fault("SIGKILL")
        progress.append(await processed(pool, tenant_id))
    assert progress[0] < len(events)  # the kills came mid-stream
    await _finish_with_a_healthy_consumer(pool, harness, tenant_id, len(events))
    await check(pool, harness.history, "S3 random SIGKILLs", seed=seed, consumers=0)


async def test_parallel_consumer_processes_give_the_reference_result(pool, tenant_id, topology, harness, mode):
    """S2/S1: three consumer processes over one shuffled stream with duplicates."""
    seed = mode.seed(3)
    events = history(tenant_id, seed=seed, sales=mode.size(80, 800))
    deliveries = events + random.Random(seed).sample(events, len(events) // 5)  # with duplicates
    random.Random(seed + 1).shuffle(deliveries)
    consumers = [await harness.service("costing").start() for _ in range(3)]
    await harness.history.publish(topology.exchange, deliveries)
    await wait_for(lambda: _count_is(pool, tenant_id, len(events)), timeout=180)
    await wait_for(lambda: _queue_empty(harness), timeout=30)
    assert (await queue_counts(harness.names))[harness.names.costing_queue]["consumers"] == 3
    absorbed = 0
    for process in consumers:
        absorbed += int(await process.metric("costing_events_total", outcome="duplicate"))
        process.terminate()
    for process in consumers:
        assert await process.wait() == 0  # graceful
    assert absorbed >= len(deliveries) - len(events)
    await check(
        pool, harness.history, "S2 three consumers, shuffled, duplicates", seed=seed, duplicates_absorbed=absorbed
    )
