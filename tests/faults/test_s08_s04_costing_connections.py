"""Faults under a running costing consumer (docs/reliability.md §7.3): its database
connections killed mid-transaction and the database gone for longer than the retry
window (S8, S6: a transient fault parks nothing), its broker connection cut mid-stream, and
latency, jitter and slicing on it (S4).
After the faults heal, every event is applied exactly once, nothing is dead-lettered,
the state equals the reference model, and the consumer is back on its queue."""

from __future__ import annotations

import asyncio

from services.costing.main import running_consumer
from shared.settings import Settings
from tests.conftest import TEST_AMQP_URL, queue_counts, settings_for, wait_for
from tests.faults.harness import check
from tests.histories import history
from tests.metrics import handled, outages, retries

# One event per transaction, so a history of a few hundred events is many transactions to hit.
ONE_BY_ONE = {"costing_batch_size": 1}


async def _processed(pool, tenant_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id)


async def _kill_mid_transaction(pool, application_name: str, kills: int, done) -> int:
    """Terminate the named application's database session whenever it is inside a
    transaction, up to ``kills`` times, 0.1 s apart (so the consumer makes progress in
    between), or until ``done()``; returns how many were killed."""
    killed = 0
    while killed < kills and not await done():
        killed += await pool.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database() "
            "AND state IN ('active', 'idle in transaction')",
            application_name,
        )
        await asyncio.sleep(0.1 if killed else 0.002)
    return killed


async def test_database_connections_killed_mid_transaction_lose_and_double_nothing(
    pool, database_url, tenant_id, topology, broker_prefix, harness, mode
):
    events = history(tenant_id, seed=mode.seed(21), sales=mode.size(400, 2000))
    name = f"costing-fault-{broker_prefix}"
    settings = settings_for(f"{database_url}?application_name={name}", broker_prefix, **ONE_BY_ONE)
    retried = retries("database_unavailable")
    async with running_consumer(settings):
        await harness.history.publish(topology.exchange, events)
        killed = await _kill_mid_transaction(
            pool, name, mode.size(8, 40), lambda: _at_least(pool, tenant_id, len(events))
        )
        harness.history.fault("pg_terminate_backend", killed)
        await wait_for(lambda: _at_least(pool, tenant_id, len(events)), timeout=120)
        await wait_for(lambda: _drained(topology), timeout=30)
    assert killed >= 3
    # The lost transactions were run again (a kill that hit a pooled connection's reset after a
    # commit costs no retry, or one that finds the event applied already).
    assert retries("database_unavailable") > retried
    await check(pool, harness.history, "S8 sessions killed mid-transaction", seed=21)


async def test_broker_connection_cut_mid_stream_is_reconnected_and_loses_and_doubles_nothing(
    pool, database_url, tenant_id, topology, broker_prefix, harness, mode
):
    events = history(tenant_id, seed=mode.seed(22), sales=mode.size(400, 2000))
    proxy, amqp_url = await harness.proxy(TEST_AMQP_URL, "reconnect_interval=0.5")
    settings = settings_for(database_url, broker_prefix, amqp_url=amqp_url, **ONE_BY_ONE)
    duplicates = handled(events, "duplicate")
    async with running_consumer(settings):
        await harness.history.publish(topology.exchange, events)
        shares = (0.2, 0.4, 0.6) if not mode.soak else tuple(n / 20 for n in range(1, 19))
        for share in shares:  # cuts, each while messages are delivered and unacknowledged
            await wait_for(lambda share=share: _at_least(pool, tenant_id, int(len(events) * share)), timeout=60)
            assert await _processed(pool, tenant_id) < len(events)
            proxy.cut()
            harness.history.fault("broker connection cut")
            await asyncio.sleep(0.3)
            proxy.restore()
        await wait_for(lambda: _at_least(pool, tenant_id, len(events)), timeout=120)
        await wait_for(lambda: _drained(topology), timeout=30)
        assert (await queue_counts(topology)).consumer_count == 1  # consuming again after the cuts
    # What a cut left on the closed channel was redelivered, not applied twice. Only what was
    # applied in the moment before the client noticed the cut (a few ms, a message or a few at
    # each cut) committed without its ack and came back a duplicate; applying everything the
    # closed channel had delivered made this about 200 per cut.
    absorbed = handled(events, "duplicate") - duplicates
    assert absorbed <= 10 * len(shares)
    await check(
        pool, harness.history, "S4 broker connection cut", seed=22, consumers=0, duplicates_absorbed=int(absorbed)
    )


async def test_a_database_outage_longer_than_the_retry_window_parks_nothing(
    pool, database_url, tenant_id, topology, broker_prefix, harness
):
    """Each time the retry window runs out, everything the consumer holds goes back to the
    queue. On RabbitMQ 3.x a nack with requeue counts as a delivery: done that way, returns
    beyond the queue's delivery limit (5) would have the broker dead-letter healthy events."""
    events = history(tenant_id, seed=23, sales=4)
    proxy, db_url = await harness.proxy(database_url)
    settings = settings_for(db_url, broker_prefix, costing_outage_retry_seconds=0.2)
    requeued, windows = handled(events, "requeued"), outages()
    async with running_consumer(settings):
        proxy.cut()  # the database is gone before the first event arrives
        harness.history.fault("database down")
        await harness.history.publish(topology.exchange, events)
        returns = len(events) * (Settings().costing_delivery_limit + 2)
        await wait_for(lambda: handled(events, "requeued") - requeued >= returns, timeout=120)
        # All held went back after one window, not one group after another, each after its
        # own window (the last would wait for all the others' windows).
        assert (handled(events, "requeued") - requeued) / (outages() - windows) >= len(events) / 2
        proxy.restore()
        await wait_for(lambda: _at_least(pool, tenant_id, len(events)), timeout=60)
        await wait_for(lambda: _drained(topology), timeout=30)
    await check(
        pool,
        harness.history,
        "S8/S6 outage longer than the retry window",
        extra={"requeued": handled(events, "requeued") - requeued},
    )


async def test_latency_jitter_and_slicing_on_the_broker_connection_lose_and_double_nothing(
    pool, database_url, tenant_id, topology, broker_prefix, harness, mode
):
    """S4: the consumer's broker connection slowed (latency with jitter) then sliced (every frame
    in pieces of a few bytes), while it consumes; the broker counts it as a consumer throughout
    and it drains the queue."""
    events = history(tenant_id, seed=mode.seed(24), sales=mode.size(120, 1200))
    proxy, amqp_url = await harness.proxy(TEST_AMQP_URL, "reconnect_interval=0.5")
    settings = settings_for(database_url, broker_prefix, amqp_url=amqp_url, costing_batch_size=5)
    async with running_consumer(settings):
        proxy.delay(0.02, jitter=0.03, seed=24)
        harness.history.fault("latency 20 ms + jitter 30 ms")
        await harness.history.publish(topology.exchange, events)
        await wait_for(lambda: _at_least(pool, tenant_id, len(events) // 3), timeout=120)
        assert (await queue_counts(topology)).consumer_count == 1
        proxy.clear()
        proxy.slice(7, 0.0005)
        harness.history.fault("slicer 7 bytes")
        await wait_for(lambda: _at_least(pool, tenant_id, 2 * len(events) // 3), timeout=120)
        assert (await queue_counts(topology)).consumer_count == 1
        proxy.clear()
        await wait_for(lambda: _at_least(pool, tenant_id, len(events)), timeout=120)
        await wait_for(lambda: _drained(topology), timeout=30)
        assert (await queue_counts(topology)).consumer_count == 1
    await check(
        pool, harness.history, "S4 latency, jitter, slicer", seed=24, extra={"proxy_connections": proxy.connections}
    )


async def _at_least(pool, tenant_id, count: int) -> bool:
    """At least ``count`` of the tenant's events applied or dead-lettered (so a test that
    parks events fails on its assertions at once instead of waiting out its timeout)."""
    parked = await pool.fetchval("SELECT count(*) FROM dead_letters WHERE tenant_id = $1", tenant_id)
    return await _processed(pool, tenant_id) + parked >= count


async def _drained(topology) -> bool:
    return (await queue_counts(topology)).message_count == 0
