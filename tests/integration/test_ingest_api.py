"""The ingest HTTP API on the real PostgreSQL and RabbitMQ: every endpoint's answer and
logged event, conflicts and state rules, bad input (rejected with nothing written),
authentication, tenant isolation and the health endpoints.

Assertions are on the HTTP answers and on the rows in catalog_products, catalog_lots,
manual_sales, event_log, outbox and idempotency_keys; no costing consumer runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from services.ingest.app import create_app
from services.ingest.app_keys import RELAY
from services.ingest.relay import OutboxRelay
from shared import broker
from shared.api_keys import create_key, revoke_key
from shared.settings import Settings
from tests.conftest import TEST_AMQP_URL, client_for, make_api_tenant, settings_for, wait_for

PRODUCTS, LOTS, SALES = "/api/v1/products", "/api/v1/lots", "/api/v1/sales"
RECEIVED_AT = "2026-01-05T08:00:00+00:00"
TENANT_TABLES = ("catalog_products", "catalog_lots", "manual_sales", "event_log", "idempotency_keys")


# request bodies -------------------------------------------------------------------------


def product(sku: str = "W-1", **extra) -> dict:
    return {"sku": sku, "name": f"Widget {sku}", **extra}


def lot(sku: str = "W-1", lot_number: str = "L1", **extra) -> dict:
    return {
        "sku": sku,
        "lot_number": lot_number,
        "quantity": "10",
        "unit_cost": "2.25",
        "received_at": RECEIVED_AT,
        **extra,
    }


def line(sku: str | None = "W-1", quantity: str = "3", unit_price: str = "19.99", **extra) -> dict:
    return {"sku": sku, "quantity": quantity, "unit_price": unit_price, **extra}


def shipping(price: str = "7.50") -> dict:
    return {"description": "Shipping", "quantity": "1", "unit_price": price}


def sale(reference: str | None = "INV-1", *lines: dict, **extra) -> dict:
    body = {
        "reference": reference,
        "type": "invoice",
        "date": "2026-02-01",
        "customer": "Bob",
        "lines": list(lines) or [line()],
        **extra,
    }
    return {k: v for k, v in body.items() if v is not None}


# fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def api(pool, topology, ingest):
    """The ingest client. ``topology`` is set up first so this test's broker queues (which the
    relay also declares) are deleted after the app has stopped."""
    yield ingest
    # Let the relay go idle before the app stops: cancelling it just after a commit notified
    # it can hang the shutdown (see test_relay_stops_when_cancelled_right_after_a_commit_notification).
    with contextlib.suppress(AssertionError):
        await wait_for(lambda: _outbox_drained(pool), timeout=3)
    await asyncio.sleep(0.1)


async def _outbox_drained(pool) -> bool:
    return await pool.fetchval("SELECT count(*) = 0 FROM outbox")


@pytest.fixture
async def ingest_offline(pool, database_url, broker_prefix):
    """The ingest app with an unreachable broker: accepted events stay in the outbox."""
    first_seq = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM event_log")
    client = await client_for(
        create_app(settings_for(database_url, broker_prefix, amqp_url="amqp://guest:guest@127.0.0.1:9/"))
    )
    yield client
    await client.close()
    # The rows were for this test only; do not let a later test's relay publish them.
    await pool.execute("DELETE FROM outbox WHERE seq > $1", first_seq)


@pytest.fixture
async def seeded(api, api_tenant):
    """Tenant A with product W-1, its lot L1 and sale INV-1 (targets for PUT/PATCH)."""
    _, headers = api_tenant
    await send(api, headers, "POST", PRODUCTS, product())
    await send(api, headers, "POST", LOTS, lot())
    await send(api, headers, "POST", SALES, sale("INV-1"))
    return api_tenant


# helpers --------------------------------------------------------------------------------


async def send(
    client, headers: dict, method: str, path: str, body=None, *, status: int = 202, extra_headers: dict | None = None
) -> dict:
    """A JSON request; asserts the status and returns the JSON answer."""
    response = await client.request(method, path, json=body, headers={**headers, **(extra_headers or {})})
    assert response.status == status, await response.text()
    return await response.json()


async def send_raw(client, headers: dict, method: str, path: str, data: bytes | str):
    payload = io.BytesIO(data.encode() if isinstance(data, str) else data)
    return await client.request(method, path, data=payload, headers={**headers, "Content-Type": "application/json"})


def fields_of(detail) -> list[str]:
    if isinstance(detail, list):
        return [d["field"] for d in detail]
    if isinstance(detail, dict):
        return [detail.get("field") or detail.get("parameter")]
    return []


async def expect_error(response, status: int, error: str, field: str | None = None) -> dict:
    """A JSON error answer {"error", "detail"}; ``field`` must be among the fields detail names."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json", text
    body = json.loads(text)
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == error, body
    if field is not None:
        assert field in fields_of(body["detail"]), body
    return body


async def footprint(pool, tenant_id) -> dict:
    """A digest of every row of the tenant in the written tables, and the log's last seq."""
    digest = {}
    for table in TENANT_TABLES:
        digest[table] = await pool.fetchrow(
            f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
            f"FROM {table} x WHERE x.tenant_id = $1",
            tenant_id,
        )
    digest["last_seq"] = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM event_log")
    return digest


@contextlib.asynccontextmanager
async def nothing_written(pool, *tenant_ids):
    before = [await footprint(pool, t) for t in tenant_ids]
    yield
    after = [await footprint(pool, t) for t in tenant_ids]
    assert after == before
    last_seq = before[0]["last_seq"]
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE seq > $1", last_seq) == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE seq > $1", last_seq) == 0


async def logged(pool, event_id: str) -> tuple[dict, dict]:
    """(event_log row, decoded event body) of one event."""
    row = await pool.fetchrow(
        "SELECT seq, event_id, tenant_id, event_type, source, correlation_id, body FROM event_log WHERE event_id = $1",
        uuid.UUID(event_id),
    )
    assert row is not None, f"event {event_id} is not in the log"
    return dict(row), json.loads(bytes(row["body"]))


async def log_of(pool, tenant_id) -> list[dict]:
    rows = await pool.fetch("SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY seq", tenant_id)
    return [json.loads(bytes(r["body"])) for r in rows]


async def sale_row(pool, tenant_id, reference: str):
    return await pool.fetchrow(
        "SELECT type, status, version, entered_at, body FROM manual_sales WHERE tenant_id = $1 AND reference = $2",
        tenant_id,
        reference,
    )


def parsed_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# products -------------------------------------------------------------------------------


async def test_post_product_answers_202_and_logs_one_product_upserted_event_with_an_outbox_row(
    pool, ingest_offline, api_tenant
):
    tenant_id, headers = api_tenant
    answer = await send(
        ingest_offline, headers, "POST", PRODUCTS, product("W-1", qbo_item_id="42", standard_cost="2.50")
    )

    assert answer["sku"] == "W-1" and answer["version"] == 1
    [event_id] = answer["event_ids"]
    rows = await pool.fetch("SELECT seq, event_id, event_type, source FROM event_log WHERE tenant_id = $1", tenant_id)
    assert [(str(r["event_id"]), r["event_type"], r["source"]) for r in rows] == [
        (event_id, "product.upserted", "manual")
    ]
    _, event = await logged(pool, event_id)
    assert event["tenant_id"] == str(tenant_id)
    assert (event["sku"], event["name"], event["qbo_item_id"], event["version"]) == ("W-1", "Widget W-1", "42", 1)
    assert Decimal(event["standard_cost"]) == Decimal("2.50")
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE seq = $1", rows[0]["seq"]) == 1
    stored = await pool.fetchrow(
        "SELECT name, qbo_item_id, standard_cost, version FROM catalog_products WHERE tenant_id = $1 AND sku = 'W-1'",
        tenant_id,
    )
    assert tuple(stored) == ("Widget W-1", "42", Decimal("2.50"), 1)


async def test_relay_publishes_the_logged_event_and_then_deletes_its_outbox_row(pool, api, api_tenant, topology):
    _, headers = api_tenant
    [event_id] = (await send(api, headers, "POST", PRODUCTS, product()))["event_ids"]
    row, _ = await logged(pool, event_id)

    message = await wait_for(lambda: topology.costing.get(fail=False, no_ack=True), timeout=15)
    assert message.headers["event_id"] == event_id
    assert message.routing_key == "product.upserted"
    assert message.body == bytes(row["body"])
    await wait_for(lambda: _outbox_empty(pool, row["seq"]), timeout=15)


async def _outbox_empty(pool, seq) -> bool:
    return await pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE seq = $1", seq)


async def test_relay_stops_when_cancelled_right_after_a_commit_notification(pool, topology, broker_prefix):
    """The app's shutdown cancels the relay task and awaits it (app.py _relay_ctx). A write that
    committed just before (IngestService.on_commit -> relay.notify) must not make it ignore that."""
    relay = OutboxRelay(pool, TEST_AMQP_URL, broker.Names(broker_prefix), Settings().costing_delivery_limit)
    task = asyncio.create_task(relay.run())

    async def connected() -> bool:
        return relay.connected

    try:
        await wait_for(connected, timeout=15)
        await asyncio.sleep(0.3)  # idle: nothing to publish, waiting to be notified
        relay.notify()  # a write has just committed ...
        task.cancel()  # ... and the app is shutting down
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, "the relay ignored its cancellation and kept running: the app's shutdown would hang"
        assert task.cancelled()
    finally:
        for _ in range(5):
            if task.done():
                break
            task.cancel()
            await asyncio.wait({task}, timeout=2)
        await relay.close()


async def test_put_product_creates_version_1_then_an_update_bumps_the_version(pool, api, api_tenant):
    tenant_id, headers = api_tenant
    first = await send(api, headers, "PUT", f"{PRODUCTS}/W-2", {"name": "Gadget"})
    second = await send(api, headers, "PUT", f"{PRODUCTS}/W-2", {"name": "Gadget v2", "standard_cost": "3.10"})

    assert (first["sku"], first["version"], second["version"]) == ("W-2", 1, 2)
    events = [await logged(pool, e) for e in first["event_ids"] + second["event_ids"]]
    assert [(b["event_type"], b["sku"], b["name"], b["version"]) for _, b in events] == [
        ("product.upserted", "W-2", "Gadget", 1),
        ("product.upserted", "W-2", "Gadget v2", 2),
    ]
    assert Decimal(events[1][1]["standard_cost"]) == Decimal("3.10")
    shown = await send(api, headers, "GET", f"{PRODUCTS}/W-2", status=200)
    assert (shown["name"], Decimal(shown["standard_cost"]), shown["version"]) == ("Gadget v2", Decimal("3.10"), 2)
    assert await pool.fetchval("SELECT count(*) FROM catalog_products WHERE tenant_id = $1", tenant_id) == 1


async def test_put_product_with_a_different_sku_in_the_body_is_rejected(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.put(f"{PRODUCTS}/W-1", json={"sku": "W-9", "name": "Other"}, headers=headers)
        await expect_error(response, 422, "validation_failed", "sku")


async def test_get_product_returns_its_stored_fields(api, api_tenant):
    _, headers = api_tenant
    await send(api, headers, "POST", PRODUCTS, product("W-1", qbo_item_id="77", standard_cost="1.125"))
    shown = await send(api, headers, "GET", f"{PRODUCTS}/W-1", status=200)
    assert (shown["sku"], shown["name"], shown["qbo_item_id"], shown["version"]) == ("W-1", "Widget W-1", "77", 1)
    assert Decimal(shown["standard_cost"]) == Decimal("1.125")
    assert parsed_time(shown["created_at"]) and parsed_time(shown["updated_at"])


async def test_get_unknown_product_is_404(api, api_tenant):
    _, headers = api_tenant
    await expect_error(await api.get(f"{PRODUCTS}/NOPE", headers=headers), 404, "not_found")


async def test_list_products_pages_by_sku_with_limit_and_cursor(api, api_tenant):
    _, headers = api_tenant
    for sku in ("E", "B", "D", "A", "C"):
        await send(api, headers, "POST", PRODUCTS, product(sku))

    pages, cursor = [], ""
    while True:
        page = await send(api, headers, "GET", f"{PRODUCTS}?limit=2&cursor={cursor}", status=200)
        pages.append([p["sku"] for p in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["A", "B"], ["C", "D"], ["E"]]
    everything = await send(api, headers, "GET", PRODUCTS, status=200)
    assert [p["sku"] for p in everything["items"]] == ["A", "B", "C", "D", "E"]
    assert everything["next_cursor"] is None
    assert everything["items"][0]["name"] == "Widget A"


@pytest.mark.parametrize("limit", ["ten", "1.5", ""])
async def test_list_products_with_a_non_integer_limit_is_400(api, api_tenant, limit):
    _, headers = api_tenant
    response = await api.get(f"{PRODUCTS}?limit={limit}", headers=headers)
    await expect_error(response, 400, "invalid_parameter", "limit")


async def test_duplicate_product_post_is_409_and_writes_nothing(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.post(PRODUCTS, json={"sku": "W-1", "name": "Again"}, headers=headers)
        await expect_error(response, 409, "conflict")


# lots -----------------------------------------------------------------------------------


async def test_post_lot_answers_202_and_logs_lot_received_version_1(pool, api, api_tenant):
    tenant_id, headers = api_tenant
    await send(api, headers, "POST", PRODUCTS, product())
    answer = await send(api, headers, "POST", LOTS, lot(quantity="12.5", unit_cost="2.125"))

    assert (answer["sku"], answer["lot_number"], answer["version"]) == ("W-1", "L1", 1)
    [event_id] = answer["event_ids"]
    row, event = await logged(pool, event_id)
    assert (row["event_type"], row["source"], row["tenant_id"]) == ("lot.received", "manual", tenant_id)
    assert (event["sku"], event["lot_number"], event["version"]) == ("W-1", "L1", 1)
    assert (Decimal(event["quantity"]), Decimal(event["unit_cost"])) == (Decimal("12.5"), Decimal("2.125"))
    assert parsed_time(event["received_at"]) == parsed_time(RECEIVED_AT)
    stored = await pool.fetchrow(
        "SELECT quantity, unit_cost, received_at, version FROM catalog_lots WHERE tenant_id = $1", tenant_id
    )
    assert tuple(stored) == (Decimal("12.5"), Decimal("2.125"), parsed_time(RECEIVED_AT), 1)


async def test_lot_received_at_without_offset_is_taken_as_utc(pool, api, api_tenant):
    _, headers = api_tenant
    await send(api, headers, "POST", PRODUCTS, product())
    [event_id] = (await send(api, headers, "POST", LOTS, lot(received_at="2026-01-05T08:00:00")))["event_ids"]
    _, event = await logged(pool, event_id)
    assert parsed_time(event["received_at"]) == parsed_time(RECEIVED_AT)


async def test_get_lot_returns_its_stored_fields(api, seeded):
    _, headers = seeded
    shown = await send(api, headers, "GET", f"{LOTS}/W-1/L1", status=200)
    assert (shown["sku"], shown["lot_number"], shown["version"]) == ("W-1", "L1", 1)
    assert (Decimal(shown["quantity"]), Decimal(shown["unit_cost"])) == (Decimal(10), Decimal("2.25"))
    assert parsed_time(shown["received_at"]) == parsed_time(RECEIVED_AT)


async def test_get_unknown_lot_is_404(api, seeded):
    _, headers = seeded
    await expect_error(await api.get(f"{LOTS}/W-1/L404", headers=headers), 404, "not_found")
    await expect_error(await api.get(f"{LOTS}/NOPE/L1", headers=headers), 404, "not_found")


@pytest.mark.parametrize(
    ("patch", "quantity", "unit_cost"),
    [
        ({"quantity": "8"}, "8", "2.25"),
        ({"unit_cost": "2.40"}, "10", "2.40"),
        ({"quantity": "9.5", "unit_cost": "0"}, "9.5", "0"),
    ],
    ids=["quantity", "unit_cost", "both"],
)
async def test_patch_lot_logs_lot_corrected_with_the_full_new_state_and_version_2(
    pool, api, seeded, patch, quantity, unit_cost
):
    _, headers = seeded
    answer = await send(api, headers, "PATCH", f"{LOTS}/W-1/L1", patch)

    assert (answer["sku"], answer["lot_number"], answer["version"]) == ("W-1", "L1", 2)
    [event_id] = answer["event_ids"]
    row, event = await logged(pool, event_id)
    assert row["event_type"] == "lot.corrected"
    assert (event["sku"], event["lot_number"], event["version"]) == ("W-1", "L1", 2)
    assert (Decimal(event["quantity"]), Decimal(event["unit_cost"])) == (Decimal(quantity), Decimal(unit_cost))
    assert parsed_time(event["received_at"]) == parsed_time(RECEIVED_AT)
    shown = await send(api, headers, "GET", f"{LOTS}/W-1/L1", status=200)
    assert (Decimal(shown["quantity"]), Decimal(shown["unit_cost"]), shown["version"]) == (
        Decimal(quantity),
        Decimal(unit_cost),
        2,
    )


async def test_each_lot_correction_gets_the_next_version(api, seeded):
    _, headers = seeded
    await send(api, headers, "PATCH", f"{LOTS}/W-1/L1", {"quantity": "8"})
    third = await send(api, headers, "PATCH", f"{LOTS}/W-1/L1", {"unit_cost": "3"})
    assert third["version"] == 3


async def test_duplicate_lot_is_409_and_writes_nothing(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.post(LOTS, json=lot(quantity="99"), headers=headers)
        await expect_error(response, 409, "conflict")


async def test_patch_of_an_unknown_lot_is_404_and_writes_nothing(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.patch(f"{LOTS}/W-1/L404", json={"quantity": "1"}, headers=headers)
        await expect_error(response, 404, "not_found")


async def test_lot_for_an_unknown_product_is_422_and_writes_nothing(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.post(LOTS, json=lot(sku="NOPE"), headers=headers)
        await expect_error(response, 422, "validation_failed", "sku")


@pytest.mark.parametrize("lot_number", ["RET-manual-INV-1-1", "ret-7"])
async def test_lot_number_reserved_for_returns_is_422_and_writes_nothing(pool, api, seeded, lot_number):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.post(LOTS, json=lot(lot_number=lot_number), headers=headers)
        body = await expect_error(response, 422, "validation_failed")
    assert "RET-" in json.dumps(body["detail"])


# manual sales ---------------------------------------------------------------------------


async def test_post_sale_logs_sale_upserted_with_revenue_per_line_and_kinds(pool, api, api_tenant):
    tenant_id, headers = api_tenant
    answer = await send(api, headers, "POST", SALES, sale("INV-1", line(discount="5"), shipping()))

    assert (answer["reference"], answer["version"]) == ("INV-1", 1)
    [event_id] = answer["event_ids"]
    row, event = await logged(pool, event_id)
    stored = await sale_row(pool, tenant_id, "INV-1")
    assert (row["event_type"], row["source"], row["tenant_id"]) == ("sale.upserted", "manual", tenant_id)
    assert (event["source"], event["sale_type"], event["external_id"], event["doc_number"], event["version"]) == (
        "manual",
        "invoice",
        "INV-1",
        "INV-1",
        1,
    )
    assert (event["txn_date"], event["customer"], event["currency"], event["exchange_rate"]) == (
        "2026-02-01",
        "Bob",
        None,
        None,
    )
    assert parsed_time(event["source_created_at"]) == stored["entered_at"]
    lines = [
        (ln["line_no"], ln["sku"], ln["description"], Decimal(ln["quantity"]), Decimal(ln["revenue"]), ln["kind"])
        for ln in event["lines"]
    ]
    assert lines == [
        (1, "W-1", None, Decimal(3), Decimal("54.97"), "inventory"),  # 3 × 19.99 − 5
        (2, None, "Shipping", Decimal(1), Decimal("7.50"), "non_inventory"),
    ]
    assert (stored["type"], stored["status"], stored["version"]) == ("invoice", "posted", 1)
    assert stored["body"]["reference"] == "INV-1" and len(stored["body"]["lines"]) == 2


async def test_foreign_currency_sale_revenue_is_converted_at_the_exchange_rate(pool, api, api_tenant):
    _, headers = api_tenant
    answer = await send(
        api,
        headers,
        "POST",
        SALES,
        sale("INV-EUR", line(discount="5"), shipping(), currency="EUR", exchange_rate="1.1"),
    )
    _, event = await logged(pool, answer["event_ids"][0])
    assert (event["currency"], Decimal(event["exchange_rate"])) == ("EUR", Decimal("1.1"))
    assert [Decimal(ln["revenue"]) for ln in event["lines"]] == [Decimal("60.467"), Decimal("8.25")]


async def test_home_currency_with_exchange_rate_1_is_accepted_and_not_converted(pool, api, api_tenant):
    _, headers = api_tenant
    answer = await send(api, headers, "POST", SALES, sale("INV-USD", currency="usd", exchange_rate="1"))
    _, event = await logged(pool, answer["event_ids"][0])
    assert event["currency"] == "USD" and event["exchange_rate"] is None
    assert Decimal(event["lines"][0]["revenue"]) == Decimal("59.97")


async def test_home_currency_is_the_tenants_own(pool, api):
    tenant_id, headers = await make_api_tenant(pool, "Euro GmbH", "EUR")
    await send(api, headers, "POST", SALES, sale("R-1", currency="EUR"))
    async with nothing_written(pool, tenant_id):
        response = await api.post(SALES, json=sale("R-2", currency="USD"), headers=headers)
        await expect_error(response, 422, "validation_failed", "exchange_rate")
    answer = await send(api, headers, "POST", SALES, sale("R-3", currency="USD", exchange_rate="0.9"))
    _, event = await logged(pool, answer["event_ids"][0])
    assert Decimal(event["lines"][0]["revenue"]) == Decimal("53.973")


async def test_line_with_an_unknown_sku_is_accepted_as_inventory(pool, api, api_tenant):
    _, headers = api_tenant
    answer = await send(api, headers, "POST", SALES, sale("INV-1", line(sku="NEVER-DEFINED")))
    _, event = await logged(pool, answer["event_ids"][0])
    assert (event["lines"][0]["sku"], event["lines"][0]["kind"]) == ("NEVER-DEFINED", "inventory")


async def test_put_sale_logs_version_2_with_the_first_versions_source_created_at(pool, api, seeded):
    tenant_id, headers = seeded
    before = await sale_row(pool, tenant_id, "INV-1")
    first_event = next(e for e in await log_of(pool, tenant_id) if e["event_type"] == "sale.upserted")

    answer = await send(
        api, headers, "PUT", f"{SALES}/INV-1", sale(None, line(quantity="1"), shipping("9"), customer="Carol")
    )

    assert (answer["reference"], answer["version"]) == ("INV-1", 2)
    _, event = await logged(pool, answer["event_ids"][0])
    assert (event["event_type"], event["external_id"], event["version"], event["customer"]) == (
        "sale.upserted",
        "INV-1",
        2,
        "Carol",
    )
    assert event["source_created_at"] == first_event["source_created_at"]
    assert [Decimal(ln["revenue"]) for ln in event["lines"]] == [Decimal("19.99"), Decimal(9)]
    after = await sale_row(pool, tenant_id, "INV-1")
    assert (after["version"], after["status"], after["entered_at"]) == (2, "posted", before["entered_at"])
    assert after["body"]["customer"] == "Carol" and after["body"]["reference"] == "INV-1"


@pytest.mark.parametrize(
    ("method", "path", "reason"), [("POST", f"{SALES}/INV-1/void", "voided"), ("DELETE", f"{SALES}/INV-1", "deleted")]
)
async def test_void_or_delete_logs_sale_removed_with_its_reason(pool, api, seeded, method, path, reason):
    tenant_id, headers = seeded
    answer = await send(api, headers, method, path)

    assert (answer["reference"], answer["status"], answer["version"]) == ("INV-1", reason, 2)
    row, event = await logged(pool, answer["event_ids"][0])
    assert row["event_type"] == "sale.removed"
    assert (event["source"], event["sale_type"], event["external_id"], event["reason"], event["version"]) == (
        "manual",
        "invoice",
        "INV-1",
        reason,
        2,
    )
    stored = await sale_row(pool, tenant_id, "INV-1")
    assert (stored["status"], stored["version"]) == (reason, 2)


async def test_delete_after_void_is_accepted(pool, api, seeded):
    _, headers = seeded
    await send(api, headers, "POST", f"{SALES}/INV-1/void")
    answer = await send(api, headers, "DELETE", f"{SALES}/INV-1")
    assert (answer["status"], answer["version"]) == ("deleted", 3)
    _, event = await logged(pool, answer["event_ids"][0])
    assert (event["reason"], event["version"]) == ("deleted", 3)


@pytest.mark.parametrize(
    ("first", "then", "path"),
    [
        ("void", "POST", f"{SALES}/INV-1/void"),
        ("delete", "DELETE", f"{SALES}/INV-1"),
        ("delete", "POST", f"{SALES}/INV-1/void"),
        ("void", "PUT", f"{SALES}/INV-1"),
        ("delete", "PUT", f"{SALES}/INV-1"),
    ],
    ids=["void-twice", "delete-twice", "void-after-delete", "edit-voided", "edit-deleted"],
)
async def test_removed_sale_refuses_the_operation_with_409_and_writes_nothing(pool, api, seeded, first, then, path):
    tenant_id, headers = seeded
    if first == "void":
        await send(api, headers, "POST", f"{SALES}/INV-1/void")
    else:
        await send(api, headers, "DELETE", f"{SALES}/INV-1")
    async with nothing_written(pool, tenant_id):
        response = await api.request(then, path, json=sale(None) if then == "PUT" else None, headers=headers)
        await expect_error(response, 409, "conflict")


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", f"{SALES}/NOPE"), ("POST", f"{SALES}/NOPE/void"), ("DELETE", f"{SALES}/NOPE")],
    ids=["edit", "void", "delete"],
)
async def test_unknown_sale_reference_is_404_and_writes_nothing(pool, api, seeded, method, path):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.request(method, path, json=sale(None) if method == "PUT" else None, headers=headers)
        await expect_error(response, 404, "not_found")


async def test_duplicate_sale_reference_without_idempotency_key_is_409(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.post(SALES, json=sale("INV-1"), headers=headers)
        await expect_error(response, 409, "conflict")


async def test_changing_a_sales_type_on_put_is_422_and_writes_nothing(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.put(f"{SALES}/INV-1", json=sale(None, type="credit_memo"), headers=headers)
        await expect_error(response, 422, "validation_failed", "type")


async def test_put_sale_with_a_different_reference_in_the_body_is_422(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.put(f"{SALES}/INV-1", json=sale("INV-2"), headers=headers)
        await expect_error(response, 422, "validation_failed", "reference")


async def test_a_sales_notes_are_kept_with_it_and_bounded(pool, api, seeded):
    tenant_id, headers = seeded
    response = await api.post(SALES, json=sale("INV-N", notes="Ship by Friday\nring twice"), headers=headers)
    assert response.status == 202, await response.text()
    assert (await sale_row(pool, tenant_id, "INV-N"))["body"]["notes"] == "Ship by Friday\nring twice"
    response = await api.put(f"{SALES}/INV-N", json=sale(None, notes="changed"), headers=headers)
    assert response.status == 202, await response.text()
    assert (await sale_row(pool, tenant_id, "INV-N"))["body"]["notes"] == "changed"
    async with nothing_written(pool, tenant_id):
        for notes in ("x" * 2001, "a\x00b"):
            response = await api.put(f"{SALES}/INV-N", json=sale(None, notes=notes), headers=headers)
            await expect_error(response, 422, "validation_failed", "notes")


# idempotency ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "table"),
    [(PRODUCTS, product("W-7"), "catalog_products"), (SALES, sale("INV-7"), "manual_sales")],
    ids=["product", "sale"],
)
async def test_same_post_with_the_same_idempotency_key_replays_the_first_answer_once(
    pool, api, api_tenant, path, body, table
):
    tenant_id, headers = api_tenant
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await api.post(path, json=body, headers={**headers, **key})
    second = await api.post(path, json=body, headers={**headers, **key})

    assert (first.status, second.status) == (202, 202)
    assert await first.json() == await second.json()
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant_id) == 1
    assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant_id) == 1


async def test_void_retried_with_the_same_idempotency_key_replays_instead_of_409(pool, api, seeded):
    tenant_id, headers = seeded
    key = {"Idempotency-Key": "void-INV-1"}
    first = await send(api, headers, "POST", f"{SALES}/INV-1/void", extra_headers=key)
    async with nothing_written(pool, tenant_id):
        again = await send(api, headers, "POST", f"{SALES}/INV-1/void", extra_headers=key)
    assert again == first


async def test_same_idempotency_key_with_a_different_body_is_422_and_writes_nothing(pool, api, api_tenant):
    tenant_id, headers = api_tenant
    key = {"Idempotency-Key": "k-1"}
    await send(api, headers, "POST", SALES, sale("INV-1"), extra_headers=key)
    async with nothing_written(pool, tenant_id):
        response = await api.post(SALES, json=sale("INV-2"), headers={**headers, **key})
        await expect_error(response, 422, "idempotency_key_reused")
        response = await api.post(PRODUCTS, json=product(), headers={**headers, **key})
        await expect_error(response, 422, "idempotency_key_reused")


async def test_idempotency_keys_are_per_tenant(pool, api, api_tenant):
    _, headers_a = api_tenant
    tenant_b, headers_b = await make_api_tenant(pool, "Beta")
    key = {"Idempotency-Key": "shared-key"}
    answer_a = await send(api, headers_a, "POST", SALES, sale("INV-1"), extra_headers=key)
    answer_b = await send(api, headers_b, "POST", SALES, sale("INV-1"), extra_headers=key)
    assert answer_a["event_ids"] != answer_b["event_ids"]
    row_b, _ = await logged(pool, answer_b["event_ids"][0])
    assert row_b["tenant_id"] == tenant_b


async def test_concurrent_retries_with_the_same_idempotency_key_get_the_first_answer(pool, api, api_tenant):
    """A client that times out and retries while its first request is still running must get
    that request's answer again, not a 409 caused by its own first attempt."""
    tenant_id, headers = api_tenant
    for attempt in range(5):
        key = {"Idempotency-Key": f"retry-{attempt}"}
        body = sale(f"INV-R{attempt}")
        responses = await asyncio.gather(*(api.post(SALES, json=body, headers={**headers, **key}) for _ in range(2)))
        answers = [(r.status, await r.json()) for r in responses]
        assert answers[0][0] == answers[1][0] == 202, answers
        assert answers[0][1] == answers[1][1], answers
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant_id) == 5


@pytest.mark.parametrize("key", ["", "k" * 201])
async def test_idempotency_key_outside_1_to_200_characters_is_400(pool, api, api_tenant, key):
    tenant_id, headers = api_tenant
    async with nothing_written(pool, tenant_id):
        response = await api.post(PRODUCTS, json=product(), headers={**headers, "Idempotency-Key": key})
        await expect_error(response, 400, "invalid_idempotency_key")


# bad input: 4xx naming the field, nothing written ---------------------------------------


def _sale_line(**changes) -> dict:
    return sale("INV-NEW", {**line(), **changes})


def _without(body: dict, *keys: str) -> dict:
    return {k: v for k, v in body.items() if k not in keys}


INVALID = [
    # (id, method, path, body (dict, or raw JSON text), field)
    ("product-missing-name", "POST", PRODUCTS, {"sku": "N-1"}, "name"),
    ("product-missing-sku", "POST", PRODUCTS, {"name": "No sku"}, "sku"),
    ("product-negative-standard-cost", "POST", PRODUCTS, product("N-1", standard_cost="-0.01"), "standard_cost"),
    ("product-put-missing-name", "PUT", f"{PRODUCTS}/W-1", {"qbo_item_id": "1"}, "name"),
    ("lot-missing-quantity", "POST", LOTS, _without(lot("W-1", "L2"), "quantity"), "quantity"),
    ("lot-missing-received-at", "POST", LOTS, _without(lot("W-1", "L2"), "received_at"), "received_at"),
    ("lot-negative-quantity", "POST", LOTS, lot("W-1", "L2", quantity="-1"), "quantity"),
    ("lot-zero-quantity", "POST", LOTS, lot("W-1", "L2", quantity="0"), "quantity"),
    ("lot-negative-unit-cost", "POST", LOTS, lot("W-1", "L2", unit_cost="-2"), "unit_cost"),
    ("lot-malformed-received-at", "POST", LOTS, lot("W-1", "L2", received_at="next tuesday"), "received_at"),
    ("lot-quantity-7-places", "POST", LOTS, lot("W-1", "L2", quantity="1.0000001"), "quantity"),
    ("lot-quantity-NaN", "POST", LOTS, lot("W-1", "L2", quantity="NaN"), "quantity"),
    ("lot-unit-cost-Infinity", "POST", LOTS, lot("W-1", "L2", unit_cost="Infinity"), "unit_cost"),
    ("lot-patch-empty", "PATCH", f"{LOTS}/W-1/L1", {}, "body"),
    ("lot-patch-negative-quantity", "PATCH", f"{LOTS}/W-1/L1", {"quantity": "-3"}, "quantity"),
    ("lot-patch-unit-cost-7-places", "PATCH", f"{LOTS}/W-1/L1", {"unit_cost": "0.1234567"}, "unit_cost"),
    ("sale-missing-reference", "POST", SALES, sale(None), "reference"),
    ("sale-missing-type", "POST", SALES, _without(sale("INV-NEW"), "type"), "type"),
    ("sale-missing-date", "POST", SALES, _without(sale("INV-NEW"), "date"), "date"),
    ("sale-missing-lines", "POST", SALES, _without(sale("INV-NEW"), "lines"), "lines"),
    ("sale-empty-lines", "POST", SALES, sale("INV-NEW", lines=[]), "lines"),
    ("sale-line-missing-quantity", "POST", SALES, sale("INV-NEW", _without(line(), "quantity")), "lines.0.quantity"),
    ("sale-unknown-type", "POST", SALES, sale("INV-NEW", type="refund"), "type"),
    ("sale-negative-quantity", "POST", SALES, _sale_line(quantity="-1"), "lines.0.quantity"),
    ("sale-zero-quantity", "POST", SALES, _sale_line(quantity="0"), "lines.0.quantity"),
    ("sale-negative-unit-price", "POST", SALES, _sale_line(unit_price="-1"), "lines.0.unit_price"),
    ("sale-negative-discount", "POST", SALES, _sale_line(discount="-1"), "lines.0.discount"),
    ("sale-unknown-currency", "POST", SALES, sale("INV-NEW", currency="ABC", exchange_rate="2"), "currency"),
    ("sale-currency-not-3-letters", "POST", SALES, sale("INV-NEW", currency="EURO", exchange_rate="2"), "currency"),
    ("sale-foreign-currency-without-rate", "POST", SALES, sale("INV-NEW", currency="EUR"), "exchange_rate"),
    (
        "sale-home-currency-rate-not-1",
        "POST",
        SALES,
        sale("INV-NEW", currency="USD", exchange_rate="1.1"),
        "exchange_rate",
    ),
    ("sale-no-currency-rate-not-1", "POST", SALES, sale("INV-NEW", exchange_rate="0.5"), "exchange_rate"),
    ("sale-zero-exchange-rate", "POST", SALES, sale("INV-NEW", currency="EUR", exchange_rate="0"), "exchange_rate"),
    ("sale-malformed-date", "POST", SALES, sale("INV-NEW", date="2026-02-30"), "date"),
    ("sale-date-not-iso", "POST", SALES, sale("INV-NEW", date="01/02/2026"), "date"),
    ("sale-unit-price-7-places", "POST", SALES, _sale_line(unit_price="19.9999999"), "lines.0.unit_price"),
    ("sale-rate-7-places", "POST", SALES, sale("INV-NEW", currency="EUR", exchange_rate="1.1000001"), "exchange_rate"),
    (
        "sale-unit-price-7-places-json-number",
        "POST",
        SALES,
        '{"reference": "INV-NEW", "type": "invoice", "date": "2026-02-01",'
        ' "lines": [{"sku": "W-1", "quantity": 1, "unit_price": 19.9999999}]}',
        "lines.0.unit_price",
    ),
    (
        "sale-discount-exceeds-quantity-times-price",
        "POST",
        SALES,
        _sale_line(quantity="2", unit_price="5", discount="10.01"),
        "lines.0",
    ),
    (
        "sale-line-without-sku-or-description",
        "POST",
        SALES,
        sale("INV-NEW", {"quantity": "1", "unit_price": "5"}),
        "lines.0",
    ),
    (
        "sale-line-with-empty-description-only",
        "POST",
        SALES,
        sale("INV-NEW", {"description": "", "quantity": "1", "unit_price": "5"}),
        "lines.0",
    ),
    ("sale-quantity-NaN", "POST", SALES, _sale_line(quantity="NaN"), "lines.0.quantity"),
    ("sale-quantity-Infinity", "POST", SALES, _sale_line(quantity="Infinity"), "lines.0.quantity"),
    ("sale-quantity-minus-Infinity", "POST", SALES, _sale_line(quantity="-Infinity"), "lines.0.quantity"),
    (
        "sale-quantity-NaN-json-literal",
        "POST",
        SALES,
        '{"reference": "INV-NEW", "type": "invoice", "date": "2026-02-01",'
        ' "lines": [{"sku": "W-1", "quantity": NaN, "unit_price": 1}]}',
        "lines.0.quantity",
    ),
    (
        "sale-unit-price-Infinity-json-literal",
        "POST",
        SALES,
        '{"reference": "INV-NEW", "type": "invoice", "date": "2026-02-01",'
        ' "lines": [{"sku": "W-1", "quantity": 1, "unit_price": Infinity}]}',
        "lines.0.unit_price",
    ),
    ("sale-put-unknown-currency", "PUT", f"{SALES}/INV-1", sale(None, currency="ABC"), "currency"),
    ("sale-put-zero-quantity", "PUT", f"{SALES}/INV-1", sale(None, line(quantity="0")), "lines.0.quantity"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_body_is_422_naming_the_field_and_writes_nothing(pool, api, seeded, method, path, body, field):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        if isinstance(body, str):
            response = await send_raw(api, headers, method, path, body)
        else:
            response = await api.request(method, path, json=body, headers=headers)
        await expect_error(response, 422, "validation_failed", field)


async def test_discount_equal_to_quantity_times_price_is_accepted_with_zero_revenue(pool, api, api_tenant):
    _, headers = api_tenant
    answer = await send(api, headers, "POST", SALES, _sale_line(quantity="2", unit_price="5", discount="10"))
    _, event = await logged(pool, answer["event_ids"][0])
    assert Decimal(event["lines"][0]["revenue"]) == 0


WRITES = [
    ("POST", PRODUCTS),
    ("PUT", f"{PRODUCTS}/W-1"),
    ("POST", LOTS),
    ("PATCH", f"{LOTS}/W-1/L1"),
    ("POST", SALES),
    ("PUT", f"{SALES}/INV-1"),
]
WRITE_IDS = ["post-product", "put-product", "post-lot", "patch-lot", "post-sale", "put-sale"]


@pytest.mark.parametrize(("method", "path"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize(
    "data", [b"this is not json", b"", b'{"sku": "W-1",', b"\xff\xfe{}"], ids=["text", "empty", "truncated", "not-utf8"]
)
async def test_a_body_that_is_not_json_is_400_invalid_json_and_writes_nothing(pool, api, seeded, method, path, data):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        await expect_error(await send_raw(api, headers, method, path, data), 400, "invalid_json")


@pytest.mark.parametrize(("method", "path"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize(
    "data", ['[{"sku": "W-1", "name": "x"}]', "42", '"text"', "null"], ids=["array", "number", "string", "null"]
)
async def test_json_that_is_not_an_object_is_422_and_writes_nothing(pool, api, seeded, method, path, data):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        await expect_error(await send_raw(api, headers, method, path, data), 422, "validation_failed", "body")


@pytest.mark.parametrize(("method", "path"), WRITES, ids=WRITE_IDS)
async def test_a_body_over_1_mib_is_413_and_writes_nothing(pool, api, seeded, method, path):
    tenant_id, headers = seeded
    oversized = json.dumps({**product("BIG"), "name": "x" * (1024 * 1024)})
    async with nothing_written(pool, tenant_id):
        await expect_error(await send_raw(api, headers, method, path, oversized), 413, "body_too_large")


NUL_TEXT = [
    ("product-name", "POST", PRODUCTS, product("N-1", name="Wid\u0000get"), "name"),
    ("lot-number", "POST", LOTS, lot(lot_number="L\u00002"), "lot_number"),
    ("sale-reference", "POST", SALES, sale("INV\u00009"), "reference"),
    (
        "sale-line-description",
        "POST",
        SALES,
        sale("INV-9", {"description": "Ship\u0000ping", "quantity": "1", "unit_price": "1"}),
        "lines.0.description",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), [c[1:] for c in NUL_TEXT], ids=[c[0] for c in NUL_TEXT])
async def test_text_with_a_nul_character_is_422_naming_the_field_and_writes_nothing(
    pool, api, seeded, method, path, body, field
):
    # PostgreSQL text and jsonb cannot hold U+0000; it must be refused as input, not fail as a 500.
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.request(method, path, json=body, headers=headers)
        await expect_error(response, 422, "validation_failed", field)


async def test_deeply_nested_json_is_400_invalid_json_and_writes_nothing(pool, api, seeded):
    tenant_id, headers = seeded
    nested = "[" * 100_000 + "]" * 100_000  # 200 kB, well under the size limit
    async with nothing_written(pool, tenant_id):
        await expect_error(await send_raw(api, headers, "POST", PRODUCTS, nested), 400, "invalid_json")


async def test_lot_quantity_beyond_what_the_catalog_can_store_is_422_not_stored_as_zero(pool, api, seeded):
    # PostgreSQL numeric holds at most 131072 digits before the point; 1E+131072 has one more.
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.post(LOTS, json=lot(lot_number="L-HUGE", quantity="1e131072"), headers=headers)
        if response.status == 202:
            stored = await pool.fetchval(
                "SELECT quantity::text FROM catalog_lots WHERE tenant_id = $1 AND lot_number = 'L-HUGE'", tenant_id
            )
            _, event = await logged(pool, (await response.json())["event_ids"][0])
            pytest.fail(
                f"accepted with 202: catalog_lots.quantity is {stored} but the logged lot.received "
                f"says {event['quantity']}"
            )
        await expect_error(response, 422, "validation_failed", "quantity")


async def test_received_at_that_cannot_be_expressed_in_utc_is_422(pool, api, seeded):
    tenant_id, headers = seeded
    async with nothing_written(pool, tenant_id):
        response = await api.post(
            LOTS, json=lot(lot_number="L-LATE", received_at="9999-12-31T23:59:59-14:00"), headers=headers
        )
        await expect_error(response, 422, "validation_failed", "received_at")


# authentication -------------------------------------------------------------------------


def _well_formed_unknown_key() -> str:
    return f"psk_{uuid.uuid4().hex[:12]}_{'A' * 43}"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-key",
        "Bearer psk_abc",
        "Bearer psk__secret",
        "Basic dXNlcjpwYXNz",
        "UNKNOWN",
    ],
    ids=lambda a: repr(a),
)
async def test_missing_or_malformed_authorization_is_401(pool, api, api_tenant, authorization):
    tenant_id, _ = api_tenant
    headers = {} if authorization is None else {"Authorization": authorization}
    await expect_error(await api.get(PRODUCTS, headers=headers), 401, "unauthorized")
    async with nothing_written(pool, tenant_id):
        await expect_error(await api.post(PRODUCTS, json=product(), headers=headers), 401, "unauthorized")


async def test_unknown_key_is_401(api):
    response = await api.get(PRODUCTS, headers={"Authorization": f"Bearer {_well_formed_unknown_key()}"})
    await expect_error(response, 401, "unauthorized")


async def test_a_known_prefix_with_a_wrong_secret_is_401(api, api_tenant):
    _, headers = api_tenant
    prefix = headers["Authorization"].split("_")[1]
    response = await api.get(PRODUCTS, headers={"Authorization": f"Bearer psk_{prefix}_{'B' * 43}"})
    await expect_error(response, 401, "unauthorized")


@pytest.mark.parametrize("by", ["prefix", "id"])
async def test_revoked_key_is_401(pool, api, api_tenant, by):
    tenant_id, _ = api_tenant
    async with pool.acquire() as conn:
        key = await create_key(conn, tenant_id)
    headers = {"Authorization": f"Bearer {key.key}"}
    await send(api, headers, "GET", PRODUCTS, status=200)
    async with pool.acquire() as conn:
        assert await revoke_key(conn, key.prefix if by == "prefix" else str(key.id))

    await expect_error(await api.get(PRODUCTS, headers=headers), 401, "unauthorized")
    async with nothing_written(pool, tenant_id):
        await expect_error(await api.post(PRODUCTS, json=product(), headers=headers), 401, "unauthorized")


async def test_key_whose_secret_contains_underscores_is_accepted(pool, api, api_tenant):
    tenant_id, _ = api_tenant
    async with pool.acquire() as conn:
        for _ in range(200):  # about half of all keys have a "_" in the secret
            key = await create_key(conn, tenant_id)
            if "_" in key.key.split("_", 2)[2]:
                break
        else:
            pytest.fail("no key with '_' in its secret was issued")
    await send(api, {"Authorization": f"Bearer {key.key}"}, "GET", PRODUCTS, status=200)


async def test_bearer_scheme_is_case_insensitive(api, api_tenant):
    _, headers = api_tenant
    key = headers["Authorization"].split(" ", 1)[1]
    await send(api, {"Authorization": f"bearer {key}"}, "GET", PRODUCTS, status=200)


# tenant isolation -----------------------------------------------------------------------


async def test_another_tenant_cannot_read_a_product_or_lot(pool, api, api_tenant):
    _, headers_a = api_tenant
    _, headers_b = await make_api_tenant(pool, "Beta")
    await send(
        api,
        headers_a,
        "POST",
        PRODUCTS,
        {"sku": "W-1", "name": "Secret Widget of A", "qbo_item_id": "QBO-A-77", "standard_cost": "1.2345"},
    )
    await send(api, headers_a, "POST", LOTS, lot(quantity="4321", unit_cost="8.7654"))

    for path in (f"{PRODUCTS}/W-1", f"{LOTS}/W-1/L1"):
        response = await api.get(path, headers=headers_b)
        body = await expect_error(response, 404, "not_found")
        text = json.dumps(body)
        assert not any(secret in text for secret in ("Secret Widget", "QBO-A-77", "1.2345", "4321", "8.7654"))
    listing = await send(api, headers_b, "GET", PRODUCTS, status=200)
    assert listing == {"items": [], "next_cursor": None}


async def test_another_tenant_cannot_correct_a_lot_or_receive_one_for_its_product(pool, api, seeded):
    tenant_a, _ = seeded
    tenant_b, headers_b = await make_api_tenant(pool, "Beta")
    async with nothing_written(pool, tenant_a, tenant_b):
        response = await api.patch(f"{LOTS}/W-1/L1", json={"quantity": "0"}, headers=headers_b)
        await expect_error(response, 404, "not_found")
        response = await api.post(LOTS, json=lot(lot_number="L2"), headers=headers_b)
        await expect_error(response, 422, "validation_failed", "sku")


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", f"{SALES}/INV-1"), ("POST", f"{SALES}/INV-1/void"), ("DELETE", f"{SALES}/INV-1")],
    ids=["edit", "void", "delete"],
)
async def test_another_tenant_cannot_touch_a_sale_reference(pool, api, seeded, method, path):
    tenant_a, _ = seeded
    tenant_b, headers_b = await make_api_tenant(pool, "Beta")
    async with nothing_written(pool, tenant_a, tenant_b):
        response = await api.request(method, path, json=sale(None) if method == "PUT" else None, headers=headers_b)
        await expect_error(response, 404, "not_found")
    stored = await sale_row(pool, tenant_a, "INV-1")
    assert (stored["status"], stored["version"]) == ("posted", 1)


async def test_tenants_have_separate_products_with_the_same_sku(pool, api, api_tenant):
    tenant_a, headers_a = api_tenant
    tenant_b, headers_b = await make_api_tenant(pool, "Beta")
    await send(api, headers_a, "POST", PRODUCTS, {"sku": "W-1", "name": "A's widget"})
    await send(api, headers_b, "POST", PRODUCTS, {"sku": "W-1", "name": "B's widget"})
    assert (await send(api, headers_b, "PUT", f"{PRODUCTS}/W-1", {"name": "B's widget v2"}))["version"] == 2

    rows = await pool.fetch(
        "SELECT tenant_id, name, version FROM catalog_products WHERE tenant_id = ANY($1) ORDER BY name",
        [tenant_a, tenant_b],
    )
    assert [tuple(r) for r in rows] == [(tenant_a, "A's widget", 1), (tenant_b, "B's widget v2", 2)]
    assert (await send(api, headers_a, "GET", f"{PRODUCTS}/W-1", status=200))["name"] == "A's widget"
    assert (await send(api, headers_b, "GET", f"{PRODUCTS}/W-1", status=200))["name"] == "B's widget v2"


async def test_tenants_have_separate_sales_with_the_same_reference(pool, api, seeded):
    tenant_a, _ = seeded
    tenant_b, headers_b = await make_api_tenant(pool, "Beta")
    answer = await send(api, headers_b, "POST", SALES, sale("INV-1", line(quantity="1")))
    assert answer["version"] == 1
    assert (await sale_row(pool, tenant_a, "INV-1"))["body"]["lines"][0]["quantity"] == "3"
    assert (await sale_row(pool, tenant_b, "INV-1"))["body"]["lines"][0]["quantity"] == "1"


# the rest of the HTTP surface ------------------------------------------------------------


async def test_correlation_id_is_echoed_and_logged_with_the_event(pool, api, api_tenant):
    _, headers = api_tenant
    response = await api.post(PRODUCTS, json=product(), headers={**headers, "X-Correlation-ID": "corr-42"})
    assert response.status == 202
    assert response.headers["X-Correlation-ID"] == "corr-42"
    row, event = await logged(pool, (await response.json())["event_ids"][0])
    assert row["correlation_id"] == event["correlation_id"] == "corr-42"


async def test_unknown_route_and_wrong_method_answer_json_errors(api, api_tenant):
    _, headers = api_tenant
    await expect_error(await api.get("/api/v1/nothing-here", headers=headers), 404, "not_found")
    await expect_error(await api.get(SALES, headers=headers), 405, "method_not_allowed")


async def test_healthz_is_open(api):
    response = await api.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_answers_json_and_is_ready_once_the_relay_is_connected(api):
    async def ready():
        response = await api.get("/readyz")
        assert response.content_type == "application/json"
        body = await response.json()
        return body if response.status == 200 else None

    body = await wait_for(ready, timeout=15)
    assert body == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


async def test_readyz_is_503_json_while_the_broker_is_unreachable(ingest_offline):
    response = await ingest_offline.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unavailable")


async def test_outbox_gauges_show_what_waits_while_the_broker_is_unreachable(pool, ingest_offline, api_tenant):
    _, headers = api_tenant
    ingest_offline.server.app[RELAY].report_every = 0.05
    await send(ingest_offline, headers, "POST", PRODUCTS, product())
    waiting = await pool.fetchval("SELECT count(*) FROM outbox")

    async def reported() -> bool:
        return (
            REGISTRY.get_sample_value("ingest_outbox_pending") == waiting
            and (REGISTRY.get_sample_value("ingest_outbox_oldest_age_seconds") or 0) > 0
        )

    await wait_for(reported, timeout=15)
    exposed = await (await ingest_offline.get("/metrics")).text()
    assert f"ingest_outbox_pending {float(waiting)}" in exposed
