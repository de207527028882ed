"""From the ingest API to the costed rows: the outbox relay, broker outages, replay,
rebuild and dead-letter redrive, with the real services, PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from decimal import Decimal

import aiohttp
from prometheus_client import REGISTRY

from services.costing.main import running_consumer
from services.costing.rebuild import rebuild
from services.ingest import deadletters
from services.ingest.app import create_app
from services.ingest.relay import OutboxRelay
from services.ingest.replay import Selection, replay
from shared import broker
from shared.events import LotReceived, parse_event
from shared.settings import Settings
from tests.conftest import (
    TEST_AMQP_URL,
    client_for,
    event_applied,
    outbox_pending,
    queue_counts,
    settings_for,
    wait_for,
)
from tests.histories import T0
from tests.invariants import assert_invariants, violations
from tests.projection import project
from tests.reference_model import compute
from tests.tcp_proxy import TcpProxy, through

LOT = {"sku": "W-1", "lot_number": "L1", "quantity": "10", "unit_cost": "2.25", "received_at": "2026-01-05T08:00:00Z"}


def sale(reference: str, date: str, quantity: str, price: str = "5", **extra) -> dict:
    return {
        "reference": reference,
        "type": "invoice",
        "date": date,
        "customer": "Bob",
        "lines": [
            {"sku": "W-1", "quantity": quantity, "unit_price": price},
            {"description": "Shipping", "quantity": "1", "unit_price": "7.50"},
        ],
        **extra,
    }


async def post(client, headers, method: str, path: str, body=None) -> list[str]:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status == 202, await response.text()
    return (await response.json())["event_ids"]


async def logged_events(pool, tenant_id):
    rows = await pool.fetch("SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY seq", tenant_id)
    return [parse_event(bytes(r["body"])) for r in rows]


async def all_applied(pool, tenant_id) -> bool:
    return await pool.fetchval(
        """SELECT count(*) = 0 FROM event_log e WHERE e.tenant_id = $1
        AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = e.event_id)""",
        tenant_id,
    )


async def write_history(client, headers) -> None:
    """Edits, a void, a delete, a backdated sale and a shortage resolved by a later lot."""
    await post(client, headers, "PUT", "/api/v1/products/W-1", {"name": "Widget"})
    await post(client, headers, "POST", "/api/v1/lots", LOT)
    await post(client, headers, "POST", "/api/v1/sales", sale("INV-1", "2026-02-01", "6"))
    await post(client, headers, "POST", "/api/v1/sales", sale("INV-2", "2026-02-03", "7"))  # 3 short
    await post(client, headers, "PUT", "/api/v1/sales/INV-1", sale("INV-1", "2026-02-01", "5"))
    await post(client, headers, "POST", "/api/v1/sales", sale("INV-0", "2026-01-20", "1"))  # backdated
    await post(client, headers, "POST", "/api/v1/sales", sale("INV-3", "2026-02-05", "2"))
    await post(client, headers, "POST", "/api/v1/sales/INV-3/void")
    await post(client, headers, "POST", "/api/v1/sales", sale("INV-4", "2026-02-06", "1"))
    await post(client, headers, "DELETE", "/api/v1/sales/INV-4")
    await post(client, headers, "PATCH", "/api/v1/lots/W-1/L1", {"unit_cost": "2.50"})
    await post(
        client,
        headers,
        "POST",
        "/api/v1/lots",
        {**LOT, "lot_number": "L2", "quantity": "5", "unit_cost": "3", "received_at": "2026-03-01T00:00:00Z"},
    )


async def test_manual_sale_is_costed_end_to_end(pool, ingest, api_tenant, costing_consumer):
    tenant_id, headers = api_tenant
    await post(ingest, headers, "POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"})
    await post(ingest, headers, "POST", "/api/v1/lots", LOT)
    await post(ingest, headers, "POST", "/api/v1/sales", sale("INV-1", "2026-02-01", "12"))
    await wait_for(lambda: all_applied(pool, tenant_id))  # in any order: the result is the same
    row = await pool.fetchrow("SELECT revenue, cost, has_shortage FROM sales WHERE tenant_id = $1", tenant_id)
    # 10 from L1 at 2.25 = 22.50, 2 short at WAC 2.25 = 4.50; revenue 12 × 5 + 7.50 shipping
    assert (row["revenue"], row["cost"], row["has_shortage"]) == (Decimal("67.50"), Decimal("27.00"), True)
    lines = await pool.fetch(
        "SELECT line_no, kind, cost, shortage_qty FROM sale_lines WHERE tenant_id = $1 ORDER BY line_no", tenant_id
    )
    assert [(r["kind"], r["cost"], r["shortage_qty"]) for r in lines] == [
        ("inventory", Decimal("27.00"), Decimal(2)),
        ("non_inventory", Decimal(0), Decimal(0)),
    ]
    remaining = await pool.fetchval("SELECT remaining FROM lots WHERE tenant_id = $1", tenant_id)
    assert remaining == 0


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
    pool, database_url, broker_prefix, topology, api_tenant, costing
):
    tenant_id, headers = api_tenant
    await pool.execute("DELETE FROM outbox")  # rows earlier tests left: the crash must come at this test's row
    port = _free_port()
    crashing = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ingest",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(
            os.environ,
            DATABASE_URL=database_url,
            AMQP_URL=TEST_AMQP_URL,
            BROKER_PREFIX=broker_prefix,
            INGEST_PORT=str(port),
            LOG_LEVEL="WARNING",
            CRASH_POINT="after_publish_before_mark_sent",
        ),
    )
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            await wait_for(lambda: _answers(http), timeout=60)
            async with http.post("/api/v1/products", json={"sku": "W-1", "name": "Widget"}, headers=headers) as r:
                assert r.status == 202
                [event_id] = (await r.json())["event_ids"]
        assert await asyncio.wait_for(crashing.wait(), 30) == 137  # died after the confirm
    finally:
        if crashing.returncode is None:
            crashing.kill()
            await crashing.wait()
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


async def _attempted(pool, tenant_id) -> bool:
    return await pool.fetchval(
        "SELECT coalesce(max(o.attempts), 0) > 0 FROM outbox o JOIN event_log e USING (seq) WHERE e.tenant_id = $1",
        tenant_id,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _answers(http) -> bool:
    try:
        async with http.get("/healthz") as r:
            return r.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def _take_all(queue) -> list:
    """Every message now in the queue, acknowledged (taken off it)."""
    taken = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        taken.append(message)
    return taken


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


async def test_dead_lettered_event_is_redriven_after_the_fix(pool, costing_consumer):
    _, _, topology = costing_consumer
    missing_tenant = uuid.uuid4()  # its products cannot be written until the tenant exists
    event = LotReceived(
        tenant_id=missing_tenant, occurred_at=T0, sku="W-1", lot_number="L1", quantity=1, unit_cost=1, received_at=T0
    )
    await broker.publish_event(topology.exchange, event)
    parked = await wait_for(lambda: _parked(topology))
    assert [p.event_id for p in parked] == [str(event.event_id)]
    assert "ForeignKeyViolation" in parked[0].reason
    await pool.execute("INSERT INTO tenants (id, name) VALUES ($1, 'late')", missing_tenant)  # the fix
    sent = await deadletters.redrive(topology, pool, {str(event.event_id)})
    assert len(sent) == 1
    await wait_for(lambda: event_applied(pool, event.event_id))
    assert await pool.fetchval("SELECT redriven_at IS NOT NULL FROM dead_letters WHERE event_id = $1", event.event_id)


async def _parked(topology):
    return await deadletters.list_parked(topology)


async def _other_tenant(pool):
    from tests.conftest import make_api_tenant

    return await make_api_tenant(pool, "Other")


async def _sale_totals(pool, tenant_id):
    return [
        tuple(r)
        for r in await pool.fetch(
            "SELECT external_id, status, revenue, cost, has_shortage FROM sales "
            "WHERE tenant_id = $1 ORDER BY external_id",
            tenant_id,
        )
    ]


async def _outbox_empty(pool, tenant_id) -> bool:
    return await outbox_pending(pool, tenant_id) == 0


async def _queue_drained(topology) -> bool:
    return (await queue_counts(topology)).message_count == 0
