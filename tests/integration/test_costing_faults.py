"""Faults under a running costing consumer (docs/reliability.md §7.3): its database
connections killed mid-transaction and the database gone for longer than the retry
window (S8), and its broker connection cut mid-stream (S4).
After the faults heal, every event is applied exactly once, nothing is dead-lettered,
the state equals the reference model, and the consumer is back on its queue."""

from __future__ import annotations

import asyncio

from services.costing.main import running_consumer
from shared import broker
from shared.settings import Settings
from tests.conftest import TEST_AMQP_URL, queue_counts, settings_for, wait_for
from tests.histories import history
from tests.invariants import assert_invariants, violations
from tests.metrics import handled, outages, retries
from tests.projection import project
from tests.reference_model import compute
from tests.tcp_proxy import TcpProxy, through

# One event per transaction, so a history of a few hundred events is many transactions to hit.
ONE_BY_ONE = {"costing_batch_size": 1}


async def _processed(pool, tenant_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id)


async def _assert_healed(pool, tenant_id, topology, events) -> None:
    assert await _processed(pool, tenant_id) == len(events)
    assert await topology.dead_letters.get(fail=False, no_ack=True) is None
    assert await pool.fetchval("SELECT count(*) FROM dead_letters WHERE tenant_id = $1", tenant_id) == 0
    assert_invariants(await violations(pool, tenant_id))
    assert await project(pool, tenant_id) == compute(events)


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
    pool, database_url, tenant_id, topology, broker_prefix
):
    events = history(tenant_id, seed=21, sales=400)
    name = f"costing-fault-{broker_prefix}"
    settings = settings_for(f"{database_url}?application_name={name}", broker_prefix, **ONE_BY_ONE)
    retried = retries("database_unavailable")
    async with running_consumer(settings):
        for event in events:
            await broker.publish_event(topology.exchange, event)
        killed = await _kill_mid_transaction(pool, name, 8, lambda: _at_least(pool, tenant_id, len(events)))
        await wait_for(lambda: _at_least(pool, tenant_id, len(events)), timeout=120)
        await wait_for(lambda: _drained(topology), timeout=30)
    assert killed >= 3
    # The lost transactions were run again (a kill that hit a pooled connection's reset after a
    # commit costs no retry, or one that finds the event applied already).
    assert retries("database_unavailable") > retried
    await _assert_healed(pool, tenant_id, topology, events)


async def test_broker_connection_cut_mid_stream_is_reconnected_and_loses_and_doubles_nothing(
    pool, database_url, tenant_id, topology, broker_prefix
):
    events = history(tenant_id, seed=22, sales=400)
    proxy, amqp_url = await _proxy_for(TEST_AMQP_URL, "reconnect_interval=0.5")
    settings = settings_for(database_url, broker_prefix, amqp_url=amqp_url, **ONE_BY_ONE)
    duplicates = handled(events, "duplicate")
    try:
        async with running_consumer(settings):
            for event in events:
                await broker.publish_event(topology.exchange, event)
            for share in (0.2, 0.4, 0.6):  # three cuts, each while messages are delivered and unacknowledged
                await wait_for(lambda share=share: _at_least(pool, tenant_id, int(len(events) * share)), timeout=60)
                assert await _processed(pool, tenant_id) < len(events)
                proxy.cut()
                await asyncio.sleep(0.3)
                proxy.restore()
            await wait_for(lambda: _at_least(pool, tenant_id, len(events)), timeout=120)
            await wait_for(lambda: _drained(topology), timeout=30)
            assert (await queue_counts(topology)).consumer_count == 1  # consuming again after the cuts
    finally:
        await proxy.stop()
    # What a cut left on the closed channel was redelivered, not applied twice. Only what was
    # applied in the moment before the client noticed the cut (a few ms, a message or a few at
    # each cut) committed without its ack and came back a duplicate; applying everything the
    # closed channel had delivered made this about 200 per cut.
    assert handled(events, "duplicate") - duplicates <= 30
    await _assert_healed(pool, tenant_id, topology, events)


async def test_a_database_outage_longer_than_the_retry_window_parks_nothing(
    pool, database_url, tenant_id, topology, broker_prefix
):
    """Each time the retry window runs out, everything the consumer holds goes back to the
    queue. On RabbitMQ 3.x a nack with requeue counts as a delivery: done that way, returns
    beyond the queue's delivery limit (5) would have the broker dead-letter healthy events."""
    events = history(tenant_id, seed=23, sales=4)
    proxy, db_url = await _proxy_for(database_url)
    settings = settings_for(db_url, broker_prefix, costing_outage_retry_seconds=0.2)
    requeued, windows = handled(events, "requeued"), outages()
    try:
        async with running_consumer(settings):
            proxy.cut()  # the database is gone before the first event arrives
            for event in events:
                await broker.publish_event(topology.exchange, event)
            returns = len(events) * (Settings().costing_delivery_limit + 2)
            await wait_for(lambda: handled(events, "requeued") - requeued >= returns, timeout=120)
            # All held went back after one window, not one group after another, each after its
            # own window (the last would wait for all the others' windows).
            assert (handled(events, "requeued") - requeued) / (outages() - windows) >= len(events) / 2
            proxy.restore()
            await wait_for(lambda: _at_least(pool, tenant_id, len(events)), timeout=60)
    finally:
        await proxy.stop()
    await _assert_healed(pool, tenant_id, topology, events)


async def _proxy_for(url: str, query: str = "") -> tuple[TcpProxy, str]:
    """A started TCP proxy to the server of ``url``, and ``url`` pointed through it."""
    proxy = TcpProxy.to(url)
    return proxy, through(url, await proxy.start(), query)


async def _at_least(pool, tenant_id, count: int) -> bool:
    """At least ``count`` of the tenant's events applied or dead-lettered (so a test that
    parks events fails on its assertions at once instead of waiting out its timeout)."""
    parked = await pool.fetchval("SELECT count(*) FROM dead_letters WHERE tenant_id = $1", tenant_id)
    return await _processed(pool, tenant_id) + parked >= count


async def _drained(topology) -> bool:
    return (await queue_counts(topology)).message_count == 0
