"""Ingest-side faults (docs/reliability.md §7.3), moved onto the fault harness: the broker
unreachable while writes are accepted (S4, S10), ingest killed between the broker's confirm
and the outbox delete (S10, S1), an unroutable publish and a confirm that never comes (S5),
a full queue rejecting publishes (S5 back-pressure), replay and rebuild (S11, including a
replay into an empty database compared with the live one), and every service stopped by
SIGTERM mid-stream (graceful shutdown) or by a second signal."""

from __future__ import annotations

import asyncio
import signal
import uuid

import aio_pika
import aiohttp
from asyncpg import connect as asyncpg_connect
from prometheus_client import REGISTRY

from services.costing.app_keys import BROKER as BROKER_KEY
from services.costing.main import running_consumer
from services.costing.rebuild import rebuild
from services.ingest.app import create_app
from services.ingest.relay import OutboxRelay
from services.ingest.replay import Selection, replay
from shared import broker
from shared.db import create_pool
from shared.events import parse_event
from shared.migrate import recreate_database
from shared.settings import Settings
from tests.conftest import (
    TEST_AMQP_URL,
    TEST_DATABASE_URL,
    client_for,
    outbox_pending,
    settings_for,
    wait_for,
)
from tests.faults.harness import check
from tests.integration.test_ingest_pipeline import (
    LOT,
    _answers,
    _attempted,
    _other_tenant,
    _outbox_empty,
    _queue_drained,
    _sale_totals,
    _take_all,
    all_applied,
    logged_events,
    post,
    sale,
    write_history,
)
from tests.invariants import assert_invariants, violations
from tests.projection import project
from tests.reference_model import compute
from tests.tcp_proxy import TcpProxy, through


async def test_writes_are_accepted_while_the_broker_is_unreachable_and_applied_once_after(
    pool, database_url, broker_prefix, api_tenant, costing_consumer
):
    tenant_id, headers = api_tenant
    proxy = TcpProxy("127.0.0.1", 5672)
    port = await proxy.start()
    client = await client_for(
        create_app(settings_for(database_url, broker_prefix, amqp_url=f"amqp://guest:guest@127.0.0.1:{port}/"))
    )
    try:
        await post(client, headers, "POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"})
        await wait_for(lambda: all_applied(pool, tenant_id))
        proxy.cut()
        await write_history(client, headers)  # every write answered 202 with the broker gone
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM outbox o JOIN event_log e USING (seq) WHERE e.tenant_id = $1", tenant_id
            )
            > 0
        )
        proxy.restore()
        await wait_for(lambda: all_applied(pool, tenant_id), timeout=60)
    finally:
        await client.close()
        await proxy.stop()
    events = await logged_events(pool, tenant_id)
    assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id) == len(events)
    assert await project(pool, tenant_id) == compute(events)
    assert_invariants(await violations(pool, tenant_id))


async def test_ingest_killed_between_the_confirm_and_the_outbox_delete_republishes_and_costing_applies_once(
    pool, database_url, broker_prefix, topology, api_tenant, costing, harness
):
    tenant_id, headers = api_tenant
    await pool.execute("DELETE FROM outbox")  # rows earlier tests left: the crash must come at this test's row
    crashing = await harness.service("ingest", CRASH_POINT="after_publish_before_mark_sent").start()
    async with aiohttp.ClientSession(crashing.url) as http:
        await wait_for(lambda: _answers(http), timeout=60)
        async with http.post("/api/v1/products", json={"sku": "W-1", "name": "Widget"}, headers=headers) as r:
            assert r.status == 202
            [event_id] = (await r.json())["event_ids"]
    assert await crashing.wait(30) == 137  # died after the confirm
    assert await outbox_pending(pool, tenant_id) == 1  # the row outlived the crash ...
    relay = OutboxRelay(pool, TEST_AMQP_URL, broker.Names(broker_prefix), Settings().costing_delivery_limit)
    try:
        while await outbox_pending(pool, tenant_id):
            await relay.publish_pending()  # ... and is published again, then deleted
    finally:
        await relay.close()
    copies = [m for m in await _take_all(topology.costing) if m.headers.get("event_id") == event_id]
    assert len(copies) == 2 and copies[0].body == copies[1].body
    assert [await costing.apply(parse_event(m.body)) for m in copies] == [True, False]  # the inbox absorbs it
    assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id) == 1


async def test_an_unroutable_event_stays_in_the_outbox_until_the_relay_has_routed_it(
    pool, ingest, api_tenant, topology
):
    """RELIABILITY S5: the broker returns a publish it cannot route (the queue's binding is
    gone). The relay must not count that as sent: the row stays, and the relay reconnects,
    declares its topology again (binding included) and sends it."""
    tenant_id, headers = api_tenant
    [first] = await post(ingest, headers, "POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"})
    await wait_for(lambda: _outbox_empty(pool, tenant_id))
    await topology.costing.unbind(topology.exchange, "#")
    failures = REGISTRY.get_sample_value("ingest_outbox_publish_failures_total") or 0
    [second] = await post(ingest, headers, "POST", "/api/v1/products", {"sku": "W-2", "name": "Gadget"})
    await wait_for(lambda: _outbox_empty(pool, tenant_id))
    assert (REGISTRY.get_sample_value("ingest_outbox_publish_failures_total") or 0) > failures  # it was returned
    delivered = [m.headers.get("event_id") for m in await _take_all(topology.costing)]
    assert delivered == [first, second]


async def test_a_publish_whose_confirm_never_comes_stays_in_the_outbox_and_the_relay_does_not_hang(
    pool, database_url, broker_prefix, topology, api_tenant
):
    """RELIABILITY S5: the broker connection turns into a blackhole right after the relay
    connected, so a publish's confirm never arrives. The publish times out, the row stays
    (its attempt recorded), and once the network heals the relay reconnects and sends it."""
    tenant_id, headers = api_tenant
    await pool.execute("DELETE FROM outbox")  # rows earlier tests left: this relay is to send only this test's
    writer = await client_for(
        create_app(settings_for(database_url, broker_prefix, amqp_url="amqp://guest:guest@127.0.0.1:9/"))
    )  # logs only
    proxy = TcpProxy.to(TEST_AMQP_URL)
    relay = OutboxRelay(
        pool,
        through(TEST_AMQP_URL, await proxy.start()),
        broker.Names(broker_prefix),
        Settings().costing_delivery_limit,
        publish_timeout=0.5,
    )
    running = asyncio.create_task(relay.run())
    try:
        await wait_for(lambda: relay.connected)
        proxy.blackhole()
        [event_id] = await post(writer, headers, "POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"})
        await wait_for(lambda: _attempted(pool, tenant_id))  # the publish timed out and was recorded ...
        assert await outbox_pending(pool, tenant_id) == 1  # ... and the row was kept
        assert not running.done()  # the relay is still at work, not stuck on the lost confirm
        proxy.heal()
        await wait_for(lambda: _outbox_empty(pool, tenant_id), timeout=60)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await relay.close()
        await writer.close()
        await proxy.stop()
    assert event_id in [m.headers.get("event_id") for m in await _take_all(topology.costing)]


async def test_replay_repairs_lost_messages_and_changes_nothing_that_was_right(
    pool, ingest, api_tenant, database_url, broker_prefix, topology
):
    tenant_id, headers = api_tenant
    await write_history(ingest, headers)
    await wait_for(lambda: _outbox_empty(pool, tenant_id))
    await topology.costing.purge()  # the messages are lost before any consumer saw them
    events = await logged_events(pool, tenant_id)
    async with running_consumer(settings_for(database_url, broker_prefix)):
        assert await replay(pool, topology.exchange, Selection(tenant_id=tenant_id)) == len(events)
        await wait_for(lambda: all_applied(pool, tenant_id))
        repaired = await project(pool, tenant_id)
        assert repaired == compute(events)
        # Replaying a range again is a no-op.
        await replay(pool, topology.exchange, Selection(tenant_id=tenant_id, event_types=["sale.upserted"]))
        await wait_for(lambda: _queue_drained(topology))
        assert await project(pool, tenant_id) == repaired


async def test_replay_alongside_live_writes_doubles_nothing(pool, ingest, api_tenant, costing_consumer, topology):
    """RELIABILITY S11(c): a replay of the tenant's whole log runs while new sales, edits and
    voids keep arriving and being costed; the result is the reference model's over the log."""
    tenant_id, headers = api_tenant
    await write_history(ingest, headers)
    await wait_for(lambda: all_applied(pool, tenant_id))

    async def live() -> None:
        for n in range(10, 16):
            await post(ingest, headers, "POST", "/api/v1/sales", sale(f"INV-{n}", f"2026-01-{n}", str(n % 4 + 1)))
        await post(ingest, headers, "PUT", "/api/v1/sales/INV-12", sale("INV-12", "2026-01-12", "9"))
        await post(ingest, headers, "POST", "/api/v1/sales/INV-13/void")
        await post(
            ingest, headers, "POST", "/api/v1/lots", {**LOT, "lot_number": "L9", "received_at": "2026-01-11T00:00:00Z"}
        )

    logged_before = len(await logged_events(pool, tenant_id))
    _, _, exchange_topology = costing_consumer
    replayed, _ = await asyncio.gather(replay(pool, exchange_topology.exchange, Selection(tenant_id=tenant_id)), live())
    assert replayed >= logged_before  # the whole log, up to where it stood when the replay read it
    await wait_for(lambda: all_applied(pool, tenant_id))
    await wait_for(lambda: _queue_drained(topology))
    events = await logged_events(pool, tenant_id)
    assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id) == len(events)
    assert await project(pool, tenant_id) == compute(events)
    assert_invariants(await violations(pool, tenant_id))


async def test_rebuild_gives_identical_state(pool, ingest, api_tenant, costing_consumer, topology):
    tenant_id, headers = api_tenant
    other_id, other_headers = await _other_tenant(pool)
    await write_history(ingest, headers)
    await write_history(ingest, other_headers)
    await wait_for(lambda: all_applied(pool, tenant_id))
    await wait_for(lambda: all_applied(pool, other_id))
    before, other_before = await project(pool, tenant_id), await project(pool, other_id)
    totals_before = await _sale_totals(pool, tenant_id)
    assert any(line.shortage_qty > 0 for line in before.lines.values()) or any(
        s.status != "posted" for s in before.sales.values()
    )

    _, _, topology_ = costing_consumer
    await rebuild(pool, topology_.exchange, tenant_id)
    await wait_for(lambda: all_applied(pool, tenant_id))
    assert await project(pool, tenant_id) == before
    assert await _sale_totals(pool, tenant_id) == totals_before
    assert await project(pool, other_id) == other_before  # other tenants untouched


async def test_a_full_queue_rejecting_publishes_holds_the_rows_until_there_is_room(
    pool, database_url, broker_prefix, api_tenant, harness
):
    """S5 back-pressure: a second quorum queue bound to the exchange, ``x-max-length`` 3 with
    ``x-overflow: reject-publish``, fills up; the broker then nacks every publish routed to it
    (even when the costing queue took a copy). The relay keeps those rows in the outbox
    (lost = 0), keeps running, and sends them once there is room; the copies the costing
    queue received on nacked attempts are absorbed by the inbox (I4). (A memory alarm, the
    other way a broker blocks publishers, is node-wide: not raised on the shared broker.)"""
    tenant_id, headers = api_tenant
    settings = settings_for(database_url, broker_prefix)
    full = f"{broker_prefix}.full"
    connection = await aio_pika.connect(TEST_AMQP_URL)
    channel = await connection.channel()
    topology = await broker.declare(channel, broker.Names(broker_prefix))
    queue = await channel.declare_queue(
        full, durable=True, arguments={"x-queue-type": "quorum", "x-max-length": 3, "x-overflow": "reject-publish"}
    )
    await queue.bind(topology.exchange, "#")
    failures = REGISTRY.get_sample_value("ingest_outbox_publish_failures_total") or 0
    client = await client_for(create_app(settings))
    try:
        async with running_consumer(settings):
            await write_history(client, headers)  # 12 writes: more than the full queue takes
            harness.history.fault("queue full (reject-publish)")
            await wait_for(lambda: _attempted(pool, tenant_id), timeout=30)
            assert await outbox_pending(pool, tenant_id) > 0  # nacked rows stay
            assert (REGISTRY.get_sample_value("ingest_outbox_publish_failures_total") or 0) > failures
            await queue.purge()  # room again (and again: each retry may fill it once more)
            await channel.queue_delete(full)
            await wait_for(lambda: _outbox_empty(pool, tenant_id), timeout=60)
            await wait_for(lambda: all_applied(pool, tenant_id), timeout=60)
            await wait_for(lambda: _queue_drained(topology), timeout=30)
    finally:
        await client.close()
        await connection.close()
    await harness.history.adopt_log(pool, tenant_id)
    await check(pool, harness.history, "S5 reject-publish back-pressure")


async def test_replay_into_an_empty_database_equals_the_live_state(pool, ingest, api_tenant, costing_consumer, harness):
    """S11: the tenant's event log replayed into an empty, freshly migrated database, through a
    broker topology and a consumer of its own, gives the live database's state."""
    tenant_id, headers = api_tenant
    await write_history(ingest, headers)
    await wait_for(lambda: all_applied(pool, tenant_id))
    await harness.history.adopt_log(pool, tenant_id)
    live = await project(pool, tenant_id)
    name = f"pt_faults_replay_{uuid.uuid4().hex[:8]}"
    owner_url = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/" + name
    service_url = through(owner_url.replace("postgres@", "partsemble_app@"), 5432)
    await recreate_database(owner_url, service_url)
    empty = await create_pool(owner_url, min_size=1, max_size=2)
    prefix = f"{harness.names.prefix}-replay"
    try:
        await empty.execute("INSERT INTO tenants (id, name, home_currency) VALUES ($1, 'replayed', 'USD')", tenant_id)
        settings = settings_for(service_url, prefix, database_owner_url=owner_url)
        async with running_consumer(settings) as (_consumer, _app, topology):
            replayed = await replay(pool, topology.exchange, Selection(tenant_id=tenant_id))
            assert replayed == len(harness.history.facts)
            await wait_for(lambda: all_applied_in(empty, tenant_id, replayed), timeout=60)
            await broker.delete(await _app[BROKER_KEY].channel(), broker.Names(prefix))
        assert await project(empty, tenant_id) == live
        assert_invariants(await violations(empty, tenant_id))
    finally:
        await empty.close()
        conn = await asyncpg_connect(TEST_DATABASE_URL.rsplit("/", 1)[0] + "/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    await check(pool, harness.history, "S11 replay into an empty database", extra={"replayed": replayed})


async def all_applied_in(pool, tenant_id, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id) >= n


async def test_every_service_stopped_by_sigterm_mid_stream_finishes_its_work_and_exits_0(
    pool, api_tenant, harness, mode
):
    """Graceful shutdown (S3, S10, I10): ingest, costing and query as processes; SIGTERM to each
    while writes are flowing. Each exits 0 within the grace period; costing finishes the batch
    in hand (never cancelled mid-transaction) and hands back what it had not started; the relay
    finishes its batch. After a restart, nothing is lost or doubled. A second signal forces."""
    tenant_id, headers = api_tenant
    ingest = await harness.service("ingest", SHUTDOWN_GRACE_SECONDS="20").start()
    costing = await harness.service("costing", SHUTDOWN_GRACE_SECONDS="20", COSTING_BATCH_SIZE="2").start()
    query = await harness.service("query", SHUTDOWN_GRACE_SECONDS="20").start()
    async with aiohttp.ClientSession(ingest.url) as http:
        for n in range(mode.size(3, 20)):
            await post(http, headers, "PUT", f"/api/v1/products/W-{n}", {"name": "Widget"})
            await post(http, headers, "POST", "/api/v1/lots", {**LOT, "sku": f"W-{n}", "lot_number": f"L{n}"})
            for k in range(mode.size(6, 30)):
                body = sale(f"INV-{n}-{k}", "2026-02-01", "1")
                body["lines"][0]["sku"] = f"W-{n}"
                await post(http, headers, "POST", "/api/v1/sales", body)
            if n == 1:
                costing.terminate()  # mid-stream, with messages held
                harness.history.fault("SIGTERM costing")
    ingest.terminate()
    query.terminate()
    harness.history.fault("SIGTERM ingest")
    harness.history.fault("SIGTERM query")
    assert [await p.wait(30) for p in (costing, ingest, query)] == [0, 0, 0]
    events = costing.log_events()
    assert "costing.consumer_stopped" in events and "shutdown.completed" in events
    assert "costing.batch_failed" not in events and "costing.apply_failed" not in events
    assert "relay.stopped" in ingest.log_events()
    # restarted: the rest is applied, nothing twice
    await harness.service("ingest").start()
    restarted = await harness.service("costing").start()
    await wait_for(lambda: all_applied(pool, tenant_id), timeout=120)
    await wait_for(lambda: _outbox_empty(pool, tenant_id), timeout=30)
    await harness.history.adopt_log(pool, tenant_id)
    await wait_for(lambda: _drained(harness), timeout=30)
    status, body = await restarted.get("/readyz")
    assert status == 200, body
    assert await restarted.metric("costing_queue_consumers", queue=harness.names.costing_queue) >= 1
    await check(pool, harness.history, "S10 SIGTERM to every service mid-stream", consumers=1)
    # a second signal forces: exit at once with EXIT_FORCED
    restarted.signal(signal.SIGTERM)
    restarted.signal(signal.SIGTERM)
    assert await restarted.wait(30) in (0, 3)


async def _drained(harness) -> bool:
    from tests.faults.harness import queue_counts as counts

    return (await counts(harness.names))[harness.names.costing_queue]["ready"] == 0
