"""From the ingest API to the costed rows: the outbox relay, broker outages, replay,
rebuild and dead-letter redrive, with the real services, PostgreSQL and RabbitMQ."""

from __future__ import annotations

import socket
import uuid
from decimal import Decimal

import aiohttp

from services.ingest import deadletters
from shared import broker
from shared.events import LotReceived, parse_event
from tests.conftest import (
    event_applied,
    outbox_pending,
    queue_counts,
    wait_for,
)
from tests.histories import T0

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
