"""Issue 18, the API side of the Sales tab: plan gating (every endpoint of both
services), GET /api/v1/tenant, CORS on ingest, the stock transactions ledger, shortages
open and resolved, sync-now summaries and webhooks held until entitled (through the
QuickBooks simulator), CSV exports (equal to the JSON; streamed in bounded memory)."""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.ingest.admin import update_tenant
from services.ingest.app import create_app as create_ingest_app
from services.query.app import create_app as create_query_app
from shared.plans import UNAVAILABLE, UNAVAILABLE_DETAIL
from tests.conftest import client_for, event_applied, make_api_tenant, settings_for, wait_for
from tests.integration.test_qbo_sync import qbo  # noqa: F401 - the QuickBooks simulator fixture

NOT_ENTITLED = [("starter", True), ("standard", True), ("advanced", False), ("starter", False), ("standard", False)]
#: Endpoints open to every plan (besides the OpenAPI documents): the tenant, products and lots.
OPEN_INGEST = re.compile(r"^/api/v1/(tenant|openapi\.json|products|lots)")
OPEN_QUERY = re.compile(r"^/api/v1/(tenant|openapi\.json)$")


@pytest.fixture
async def query(pool, database_url):
    client = await client_for(create_query_app(settings_for(database_url, "unused")))
    yield client
    await client.close()


@pytest.fixture
async def ingest_cors(pool, database_url, broker_prefix):
    app = create_ingest_app(
        settings_for(database_url, broker_prefix, cors_allowed_origins="http://127.0.0.1:8082, http://localhost:8082")
    )
    client = await client_for(app)
    yield client
    await client.close()


async def _set_plan(pool, tenant_id, plan: str, receiving: bool) -> None:
    async with pool.acquire() as conn:
        assert await update_tenant(conn, tenant_id, plan, receiving) is not None


def _routes(app) -> list[tuple[str, str]]:
    """(method, path with its parameters filled) of every API route of an app."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method in ("HEAD", "*"):
            continue
        if not (path.startswith("/api/v1/") or path == "/oauth/quickbooks/connect"):
            continue
        filled = re.sub(r"\{(\w+)\}", lambda m: {"event_id": str(uuid.uuid4()), "sync_id": str(uuid.uuid4())}.get(
            m.group(1), "1"), path)  # fmt: skip
        out.append((route.method, filled))
    return sorted(set(out))


@pytest.mark.parametrize(("plan", "receiving"), NOT_ENTITLED)
async def test_every_sales_tracking_endpoint_is_refused_without_the_entitlement(
    pool, ingest, query, plan, receiving
) -> None:
    tenant_id, headers = await make_api_tenant(pool, "Gated")
    await _set_plan(pool, tenant_id, plan, receiving)
    checked = 0
    for client, open_paths in ((ingest, OPEN_INGEST), (query, OPEN_QUERY)):
        for method, path in _routes(client.app):
            response = await client.request(method, path, headers=headers, json={})
            body = await response.json() if response.content_type == "application/json" else None
            if open_paths.match(path):
                assert response.status != 403, (method, path, body)
            else:
                assert response.status == 403, (method, path, response.status, body)
                assert body == {"error": UNAVAILABLE, "detail": UNAVAILABLE_DETAIL}
                checked += 1
    assert checked >= 15
    # the tenant endpoint says why, on both services
    for client in (ingest, query):
        info = await (await client.get("/api/v1/tenant", headers=headers)).json()
        assert info == {
            "name": "Gated",
            "home_currency": "USD",
            "plan": plan,
            "receiving_enabled": receiving,
            "sales_tracking": False,
        }
    # upgraded: served again at once (the entitlement is read with the key)
    await _set_plan(pool, tenant_id, "advanced", True)
    response = await query.get("/api/v1/sales", headers=headers)
    assert response.status == 200
    assert (await (await query.get("/api/v1/tenant", headers=headers)).json())["sales_tracking"] is True


async def test_admin_create_and_update_tenant_options(pool) -> None:
    from services.ingest.admin import _parser

    args = _parser().parse_args(["create-tenant", "X", "--plan", "standard", "--no-receiving-enabled"])
    assert (args.plan, args.receiving_enabled) == ("standard", False)
    args = _parser().parse_args(["create-tenant", "X"])
    assert (args.plan, args.receiving_enabled) == ("advanced", True)
    tid = str(uuid.uuid4())
    args = _parser().parse_args(["update-tenant", tid, "--receiving-enabled"])
    assert (args.plan, args.receiving_enabled) == (None, True)


async def test_cors_on_ingest(ingest_cors, ingest) -> None:
    origin = "http://127.0.0.1:8082"
    preflight = await ingest_cors.options(
        "/api/v1/sales",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    for name in ("Authorization", "Content-Type", "Idempotency-Key"):
        assert name in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    connect = await ingest_cors.options(
        "/oauth/quickbooks/connect", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    assert connect.headers["Access-Control-Allow-Credentials"] == "true"
    # an error answer carries the headers too (the page can read it)
    unauthorized = await ingest_cors.get("/api/v1/connections/quickbooks", headers={"Origin": origin})
    assert unauthorized.status == 401 and unauthorized.headers["Access-Control-Allow-Origin"] == origin
    # another origin, or no CORS configured: no headers
    other = await ingest_cors.get("/api/v1/openapi.json", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    plain = await ingest.get("/api/v1/openapi.json", headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in plain.headers


# --- ledger, shortages, stock -------------------------------------------------------------


async def _write(ingest, headers, method: str, path: str, body=None) -> list[str]:
    response = await ingest.request(method, path, headers=headers, json=body)
    assert response.status == 202, await response.text()
    return (await response.json())["event_ids"]


async def _applied(pool, event_ids) -> None:
    for event_id in event_ids:
        await wait_for(lambda e=event_id: event_applied(pool, e))


async def test_transactions_ledger_shortages_and_stock(pool, ingest, query, costing_consumer) -> None:
    _tenant, headers = await make_api_tenant(pool, "Ledger")
    ids = await _write(ingest, headers, "POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"})
    lot = {"sku": "W-1", "lot_number": "L1", "quantity": "4", "unit_cost": "2.00"}
    ids += await _write(ingest, headers, "POST", "/api/v1/lots", {**lot, "received_at": "2026-01-01T00:00:00Z"})
    await _applied(pool, ids)
    sale = {"type": "invoice", "date": "2026-02-01", "lines": [{"sku": "W-1", "quantity": "6", "unit_price": "10"}]}
    await _applied(pool, await _write(ingest, headers, "POST", "/api/v1/sales", {"reference": "M-1", **sale}))
    # 6 sold from 4: 2 short, at WAC 2.00
    shortages = await (await query.get("/api/v1/shortages", headers=headers)).json()
    [short] = shortages["items"]
    assert (short["sku"], short["line_no"], short["quantity_short"], short["wac_estimate"], short["shortage_cost"]) == (
        "W-1", 1, "2", "2.00", "4.00")  # fmt: skip
    assert short["sale"]["external_id"] == "M-1" and short["sale"]["type"] == "invoice"
    assert short["sale"]["date"] == "2026-02-01" and short["status"] == "open" and short["resolved_at"] is None
    since = datetime.fromisoformat(short["since"])
    assert abs(datetime.now(UTC) - since) < timedelta(minutes=5)
    resolved = await (await query.get("/api/v1/shortages", headers=headers, params={"status": "resolved"})).json()
    assert resolved["items"] == []
    # edit to 3 (resolves it), a credit memo returns 1, then void the sale
    edit = {**sale, "lines": [{"sku": "W-1", "quantity": "3", "unit_price": "10"}]}
    await _applied(pool, await _write(ingest, headers, "PUT", "/api/v1/sales/M-1", edit))
    resolved = await (await query.get("/api/v1/shortages", headers=headers, params={"status": "resolved"})).json()
    [done] = resolved["items"]
    assert done["status"] == "resolved" and done["resolved_at"] is not None and done["since"] == short["since"]
    assert done["quantity_short"] == "2"  # its last figures
    assert (await (await query.get("/api/v1/shortages", headers=headers)).json())["items"] == []
    everything = await (await query.get("/api/v1/shortages", headers=headers, params={"status": "all"})).json()
    assert len(everything["items"]) == 1
    credit = {"reference": "CM-1", "type": "credit_memo", "date": "2026-02-05",
              "lines": [{"sku": "W-1", "quantity": "1", "unit_price": "10"}]}  # fmt: skip
    await _applied(pool, await _write(ingest, headers, "POST", "/api/v1/sales", credit))
    await _applied(pool, await _write(ingest, headers, "POST", "/api/v1/sales/M-1/void"))

    moves = await (await query.get("/api/v1/products/W-1/transactions", headers=headers)).json()
    got = [(m["kind"], m["quantity"], m["lot_number"], m["on_hand"]) for m in moves["items"]]
    assert got == [
        ("RECEIPT", "4", "L1", "4"),
        ("SALE", "-6", None, "-2"),
        ("SALE_REVERSAL", "6", None, "4"),  # the edit: the previous version comes back…
        ("SALE", "-3", None, "1"),  # …and the new one goes out
        ("SALE_REVERSAL", "3", None, "4"),  # the void
        ("RETURN", "1", "RET-manual-CM-1-1", "5"),
    ], got
    sale_moves = [m for m in moves["items"] if m["kind"].startswith("SALE")]
    assert all(m["sale"]["external_id"] == "M-1" and m["sale"]["type"] == "invoice" for m in sale_moves)
    assert moves["next_cursor"] is None
    # keyset pages walk the same rows, running on hand included
    walked, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (await query.get("/api/v1/products/W-1/transactions", headers=headers, params=params)).json()
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == moves["items"]
    # CSV: the same rows
    response = await query.get("/api/v1/products/W-1/transactions", headers=headers, params={"format": "csv"})
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["kind"], r["quantity"], r["lot_number"] or None, r["on_hand"]) for r in rows] == got
    # stock: lots with status, on hand
    stock = await (await query.get("/api/v1/products/W-1/stock", headers=headers)).json()
    assert stock["on_hand"] == "5" and stock["open_shortage"] == "0" and stock["wac"] == "2.00"
    lots = {lot["lot_number"]: lot for lot in stock["lots"]}
    assert lots["L1"]["status"] == "available" and lots["L1"]["remaining"] == "4" and lots["L1"]["quantity"] == "4"
    assert lots["L1"]["unit_cost"] == "2.00" and lots["L1"]["received_at"].startswith("2026-01-01")
    missing = await query.get("/api/v1/products/NOPE/transactions", headers=headers)
    assert missing.status == 404
    bad = await query.get("/api/v1/products/W-1/transactions", headers=headers, params={"cursor": "bm9wZQ"})
    assert bad.status == 400


# --- CSV exports ------------------------------------------------------------------------


async def _bulk_sales(pool, tenant_id, n: int) -> None:
    await pool.execute(
        """
        INSERT INTO sales (tenant_id, source, type, external_id, status, version, txn_date, customer, revenue, cost)
        SELECT $1, 'manual', 'invoice', 'B-' || g, 'posted', 1, DATE '2025-01-01' + (g % 365), 'Customer ' || (g % 97),
               (g % 1000) + 0.25, (g % 700) + 0.125
        FROM generate_series(1, $2) g""",
        tenant_id,
        n,
    )


async def test_csv_equals_json_for_the_same_filters(pool, query) -> None:
    tenant_id, headers = await make_api_tenant(pool, "Csv")
    await _bulk_sales(pool, tenant_id, 300)
    for params in ({}, {"sort": "margin", "order": "asc"}, {"from": "2025-03-01", "to": "2025-06-30"},
                   {"customer": "Customer 1", "sort": "revenue"}):  # fmt: skip
        items, cursor = [], None
        while True:
            page_params = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
            page = await (await query.get("/api/v1/sales", headers=headers, params=page_params)).json()
            items += page["items"]
            if (cursor := page["next_cursor"]) is None:
                break
        response = await query.get("/api/v1/sales", headers=headers, params={**params, "format": "csv"})
        assert response.status == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert len(rows) == len(items)
        for row, item in zip(rows, items, strict=True):
            assert row["id"] == str(item["id"]) and row["revenue"] == item["revenue"]
            assert row["margin"] == item["margin"] and row["margin_pct"] == (item["margin_pct"] or "")
            assert row["date"] == (item["date"] or "") and row["customer"] == (item["customer"] or "")
    margins = await (await query.get("/api/v1/products/margins", headers=headers)).json()
    response = await query.get("/api/v1/products/margins", headers=headers, params={"format": "csv"})
    assert len(list(csv.DictReader(io.StringIO(await response.text())))) == len(margins["items"])
    bad = await query.get("/api/v1/sales", headers=headers, params={"format": "xml"})
    assert bad.status == 400


async def test_csv_streams_a_large_set_in_bounded_memory(pool, query) -> None:
    tenant_id, headers = await make_api_tenant(pool, "Big")
    n = 50_000
    await _bulk_sales(pool, tenant_id, n)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = await query.get("/api/v1/sales", headers=headers, params={"format": "csv"})
        assert response.status == 200
        lines, size = 0, 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
        print(f"CSV export: {size:,} bytes, {lines:,} lines, peak traced memory {peak:,} bytes")
    finally:
        tracemalloc.stop()
    assert lines == n + 1  # the header and every sale
    # The export is several megabytes; the process never held more than a fraction of it.
    assert size > 4_000_000
    assert peak < size / 3, f"peak {peak:,} bytes for {size:,} bytes of CSV"


# --- QuickBooks: sync now, held notifications -------------------------------------------


async def test_sync_now_reports_what_it_did(qbo) -> None:  # noqa: F811 - the fixture
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 2, 10)], notify=False)
    response = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert response.status == 202
    sync_id = (await response.json())["sync_id"]
    path = f"/api/v1/connections/quickbooks/{qbo.realm}/syncs/{sync_id}"

    async def finished():
        body = await (await qbo.ingest.get(path, headers=qbo.headers)).json()
        return body if body["status"] != "running" else None

    run = await wait_for(finished)
    assert run["status"] == "done" and run["finished_at"] is not None and run["failed"] == 0
    assert [(c["entity"], c["qbo_id"], c["type"]) for c in run["created"]] == [("Invoice", invoice, "invoice")]
    await qbo.expect("invoice", invoice, "posted", "20", "4")
    run = await (await qbo.ingest.get(path, headers=qbo.headers)).json()
    assert run["created"][0]["id"] == (await qbo.pool.fetchval(
        "SELECT id FROM sales WHERE tenant_id = $1 AND external_id = $2", qbo.tenant_id, invoice))  # fmt: skip
    items = (await (await qbo.ingest.get("/api/v1/connections/quickbooks", headers=qbo.headers)).json())["items"]
    assert items[0]["state"] in ("active", "syncing") and items[0]["last_synced_at"] is not None
    assert items[0]["last_error"] is None
    unknown = await qbo.ingest.get(
        f"/api/v1/connections/quickbooks/{qbo.realm}/syncs/{uuid.uuid4()}", headers=qbo.headers
    )
    assert unknown.status == 404
    too_old = (date.today() - timedelta(days=31)).isoformat()
    refused = await qbo.ingest.get("/oauth/quickbooks/connect", headers={**qbo.headers, "Accept": "application/json"},
                                   params={"since": too_old})  # fmt: skip
    assert refused.status == 400
    fine = await qbo.ingest.get("/oauth/quickbooks/connect", headers={**qbo.headers, "Accept": "application/json"},
                                params={"since": (date.today() - timedelta(days=5)).isoformat()})  # fmt: skip
    assert fine.status == 200


async def test_webhooks_of_a_tenant_not_entitled_wait_and_nothing_is_lost(qbo) -> None:  # noqa: F811
    await _set_plan(qbo.pool, qbo.tenant_id, "standard", True)
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 1, 10)])
    await wait_for(lambda: qbo.pool.fetchval(
        "SELECT count(*) FROM qbo_notifications WHERE realm_id = $1 AND entity_id = $2 AND status = 'pending'",
        qbo.realm, invoice))  # fmt: skip
    refused = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert refused.status == 403
    import asyncio

    await asyncio.sleep(2)  # several worker passes: still pending, nothing turned into events
    assert await qbo.sale("invoice", invoice) is None
    assert await qbo.pool.fetchval(
        "SELECT count(*) FROM qbo_notifications WHERE realm_id = $1 AND entity_id = $2 AND status = 'pending'",
        qbo.realm, invoice)  # fmt: skip
    await _set_plan(qbo.pool, qbo.tenant_id, "advanced", True)
    await qbo.expect("invoice", invoice, "posted", "10", "2")
