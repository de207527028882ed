"""Xero → costed sales, end to end: the Xero simulator (OAuth with its consent page and
``/connections``, the Accounting API with paging and If-Modified-Since, per-tenant limits, signed
webhooks), the ingest service (the connect flow, webhook, worker, catch-up), the costing consumer,
PostgreSQL and RabbitMQ. The organisation is connected through the real browser-bound connect flow.

Lots of W-1: L1 10 @ 2.00 (Jan 1), L2 10 @ 3.00 (Jan 10). Documents are ``NoTax`` unless said.
"""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest.app import create_app
from services.ingest.xero.webhooks import sign
from shared.events import parse_event
from tests.conftest import client_for, settings_for, wait_for
from tests.projection import project
from tests.reference_model import compute
from tools.xero_sim.app import create_app as create_sim
from tools.xero_sim.config import SimConfig

KEY = "test-xero-webhook-key"
CLIENT_ID = "SIMXEROCLIENTID0000000000000000"
SECRET = "sim-xero-secret"
KINDS = {"invoice": "invoices", "sales_receipt": "bank-transactions", "credit_memo": "credit-notes"}
ID_FIELDS = {"invoices": "InvoiceID", "bank-transactions": "BankTransactionID", "credit-notes": "CreditNoteID"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Xero:
    sim: TestClient
    ingest: TestClient
    pool: object
    tenant_id: uuid.UUID
    headers: dict
    org: str = ""
    kinds: dict = field(default_factory=dict)  # document id → sim kind path

    async def sim_call(self, method: str, path: str, body=None):
        response = await self.sim.request(method, path, json=body)
        assert response.status < 300, await response.text()
        return await response.json()

    async def doc(self, kind: str, lines: list, notify: bool = True, **fields) -> str:
        body = {"contact": "Bob", "date": "2026-02-01", "line_amount_types": "NoTax", "lines": lines, **fields}
        if kind != "bank-transactions":
            body.setdefault("status", "AUTHORISED")
        created = await self.sim_call("POST", f"/sim/{self.org}/{kind}" + ("" if notify else "?notify=false"), body)
        doc_id = created[ID_FIELDS[kind]]
        self.kinds[doc_id] = kind
        return doc_id

    @staticmethod
    def line(code: str | None, qty, price, **extra) -> dict:
        line = {"quantity": str(qty), "unit_amount": str(price), **extra}
        if code:
            line["item_code"] = code
        return line

    async def sync_now(self) -> None:
        response = await self.ingest.post(f"/api/v1/connections/xero/{self.org}/sync", headers=self.headers)
        assert response.status == 202, await response.text()

    async def sale(self, sale_type: str, external_id: str):
        return await self.pool.fetchrow(
            "SELECT status, revenue, cost, version FROM sales "
            "WHERE tenant_id = $1 AND source = 'xero' AND type = $2 AND external_id = $3",
            self.tenant_id,
            sale_type,
            external_id,
        )

    async def expect(self, sale_type, external_id, status, revenue, cost, timeout: float = 30) -> None:  # noqa: ASYNC109
        want = (status, Decimal(revenue), Decimal(cost))

        async def reached():
            row = await self.sale(sale_type, external_id)
            return row is not None and (row["status"], row["revenue"], row["cost"]) == want

        try:
            await wait_for(reached, timeout=timeout)
        except AssertionError:
            row = await self.sale(sale_type, external_id)
            raise AssertionError(f"{sale_type} {external_id}: want {want}, have {row and dict(row)}") from None

    async def stats(self) -> dict:
        return await self.sim_call("GET", f"/sim/{self.org}/stats")


async def connect_through_the_browser(env: Xero, org: str) -> dict:
    """The connect flow as a browser runs it: connect (API key) → Xero's consent → callback."""
    base = str(env.ingest.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(
            f"{base}/oauth/xero/connect",
            headers={**env.headers, "Accept": "application/json"},
            allow_redirects=False,
        ) as response:
            assert response.status == 200, await response.text()
            authorize = (await response.json())["authorize_url"]
        query = parse_qs(urlsplit(authorize).query)
        assert query["scope"][0].split() == ["openid", "offline_access", *query["scope"][0].split()[2:]]
        async with browser.get(f"{authorize}&sim_consent=allow&tenant={org}", allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            callback = response.headers["Location"]
        async with browser.get(callback, headers={"Accept": "application/json"}, allow_redirects=False) as response:
            body = await response.json()
            assert response.status == 200, body
            return body


async def _xero_env(request, pool, database_url, broker_prefix, api_tenant):
    tenant_id, headers = api_tenant
    marker = request.node.get_closest_marker("xero_sim")
    sim_config = {
        "webhook_key": KEY,
        "webhook_batch_window": 0.05,
        "webhook_retry_schedule": [0.2, 0.5, 1.0],
        "log_level": "WARNING",
        **(marker.kwargs if marker else {}),
    }
    sim = await client_for(create_sim(SimConfig(**sim_config)))
    sim_url = str(sim.make_url("")).rstrip("/")
    port = free_port()
    settings = settings_for(
        database_url,
        broker_prefix,
        xero_api_base=sim_url,
        xero_identity_base=sim_url,
        xero_oauth_authorize_url=f"{sim_url}/identity/connect/authorize",
        xero_client_id=CLIENT_ID,
        xero_client_secret=SECRET,
        xero_webhook_key=KEY,
        xero_redirect_uri=f"http://127.0.0.1:{port}/oauth/xero/callback",
        xero_sync_interval_seconds=3600,
        qbo_cdc_interval_seconds=3600,
    )
    ingest = TestClient(TestServer(create_app(settings), port=port))
    await ingest.start_server()
    env = Xero(sim, ingest, pool, tenant_id, headers)
    return env


@pytest.fixture
async def xero(request, pool, database_url, broker_prefix, api_tenant, costing_consumer):
    env = await _xero_env(request, pool, database_url, broker_prefix, api_tenant)
    try:
        await env.sim_call("POST", "/sim/webhooks/config", {"url": str(env.ingest.make_url("/webhooks/xero"))})
        env.org = (await env.sim_call("POST", "/sim/orgs", {"name": "Test Org", "base_currency": "NZD"}))["tenant_id"]
        for code, name in (("W-1", "Widget"), ("INSTALL", "Installation")):
            await env.sim_call("POST", f"/sim/{env.org}/items", {"code": code, "name": name, "sale_price": "10"})
        for path, body in (
            ("/api/v1/products", {"sku": "W-1", "name": "Widget"}),
            (
                "/api/v1/lots",
                {
                    "sku": "W-1",
                    "lot_number": "L1",
                    "quantity": "10",
                    "unit_cost": "2",
                    "received_at": "2026-01-01T00:00:00Z",
                },
            ),
            (
                "/api/v1/lots",
                {
                    "sku": "W-1",
                    "lot_number": "L2",
                    "quantity": "10",
                    "unit_cost": "3",
                    "received_at": "2026-01-10T00:00:00Z",
                },
            ),
        ):
            response = await env.ingest.post(path, json=body, headers=env.headers)
            assert response.status == 202, await response.text()
        connected = await connect_through_the_browser(env, env.org)
        assert connected["realm_id"] == env.org
        await wait_for(
            lambda: pool.fetchval(  # the initial import has run
                "SELECT cdc_watermark IS NOT NULL FROM qbo_connections WHERE provider = 'xero' AND realm_id = $1",
                env.org,
            )
        )
        yield env
    finally:
        await env.ingest.close()
        await env.sim.close()
        await pool.execute(
            "UPDATE qbo_connections SET status = 'disconnected' WHERE tenant_id = $1 AND provider = 'xero'",
            env.tenant_id,
        )


async def events_of(pool, tenant_id):
    rows = await pool.fetch("SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY seq", tenant_id)
    return [parse_event(bytes(r["body"])) for r in rows]


# --- end to end ---------------------------------------------------------------------------------


async def test_xero_documents_end_to_end_equal_the_reference_model(xero):
    w = xero.line
    # Exclusive with 15 % tax on top, a freight line without an item: revenue 3 × 10 = 30 (+ 5 service).
    inv = await xero.doc(
        "invoices",
        [w("W-1", 3, 10, tax_rate="15"), w(None, 1, 5, description="Freight")],
        line_amount_types="Exclusive",
    )
    await xero.expect("invoice", inv, "posted", "35", "6")  # 3 from L1 at 2.00
    # Inclusive, 10 % line discount: 2 × 23.00 × 0.90 = 41.40 incl. 15 % tax 5.40 → 36.00.
    incl = await xero.doc(
        "invoices",
        [w("W-1", 2, 23, discount_rate="10", tax_rate="15")],
        line_amount_types="Inclusive",
        date="2026-02-02",
    )
    await xero.expect("invoice", incl, "posted", "36", "4")
    # USD at CurrencyRate 0.8 (USD per NZD): 2 × 40 = 80 USD → 100 NZD.
    usd = await xero.doc("invoices", [w("W-1", 2, 40)], currency_code="USD", currency_rate="0.8", date="2026-02-03")
    await xero.expect("invoice", usd, "posted", "100", "4")
    # A DRAFT is no sale, a bill neither; approving the draft makes it one.
    draft = await xero.doc("invoices", [w("W-1", 1, 10)], status="DRAFT", date="2026-02-04")
    bill = await xero.doc("invoices", [w("W-1", 5, 1)], type="ACCPAY", date="2026-02-04")
    await xero.sim_call("POST", f"/sim/{xero.org}/invoices/{draft}/authorise")
    await xero.expect("invoice", draft, "posted", "10", "2")  # the 8th unit of L1
    # A return: a credit note of 1 W-1 at 10.
    credit = await xero.doc("credit-notes", [w("W-1", 1, 10)], date="2026-02-05")
    await xero.expect("credit_memo", credit, "posted", "-10", "-2.5")  # a return is costed at WAC 2.50
    # A cash sale (RECEIVE) arrives by catch-up only.
    receipt = await xero.doc("bank-transactions", [w("W-1", 2, 12)], date="2026-02-06")
    await xero.sync_now()
    await xero.expect("sales_receipt", receipt, "posted", "24", "4")
    # Edit then void.
    await xero.sim_call("POST", f"/sim/{xero.org}/invoices/{inv}", {"lines": [w("W-1", 4, 10, tax_rate="15")]})
    await xero.expect("invoice", inv, "posted", "40", "8")
    await xero.sim_call("POST", f"/sim/{xero.org}/invoices/{usd}/void")
    await xero.expect("invoice", usd, "voided", "0", "0")
    assert await xero.sale("invoice", bill) is None
    assert (
        await xero.pool.fetchval("SELECT count(*) FROM sales WHERE tenant_id = $1 AND source = 'xero'", xero.tenant_id)
        == 6
    )

    async def settled():
        return await project(xero.pool, xero.tenant_id) == compute(await events_of(xero.pool, xero.tenant_id))

    await wait_for(settled, timeout=30)


async def test_intent_to_receive_passes_both_ways_and_stores_nothing(xero):
    count = (
        "SELECT (SELECT count(*) FROM qbo_deliveries WHERE provider = 'xero'),"
        " (SELECT count(*) FROM qbo_notifications WHERE provider = 'xero')"
    )
    before = tuple(await xero.pool.fetchrow(count))
    result = await xero.sim_call("POST", "/sim/webhooks/intent-to-receive", {"rounds": 3})
    assert result["passed"], result
    assert {r["signature"]: r["status"] for r in result["results"]} == {"good": 200, "bad": 401}
    assert all(r["body_empty"] for r in result["results"])
    assert tuple(await xero.pool.fetchrow(count)) == before


async def test_a_bad_signature_is_401_with_an_empty_body_and_nothing_is_stored(xero):
    body = json.dumps(
        {
            "events": [
                {
                    "resourceId": str(uuid.uuid4()),
                    "tenantId": xero.org,
                    "tenantType": "ORGANISATION",
                    "eventCategory": "INVOICE",
                    "eventType": "UPDATE",
                    "eventDateUtc": "2026-02-01T10:00:00.000",
                }
            ],
            "firstEventSequence": 1,
            "lastEventSequence": 1,
            "entropy": "ABCDEFGHIJKLMNOPQRST",
        }
    ).encode()
    before = await xero.pool.fetchval("SELECT count(*) FROM qbo_deliveries WHERE provider = 'xero'")
    for signature in (None, "AAAA", sign(body, "some other key"), sign(body + b" ", KEY)):
        headers = {"Content-Type": "application/json"} | ({"x-xero-signature": signature} if signature else {})
        response = await xero.ingest.post("/webhooks/xero", data=body, headers=headers)
        assert response.status == 401
        assert await response.read() == b""
    assert await xero.pool.fetchval("SELECT count(*) FROM qbo_deliveries WHERE provider = 'xero'") == before
    good = await xero.ingest.post("/webhooks/xero", data=body, headers={"x-xero-signature": sign(body, KEY)})
    assert good.status == 200 and await good.read() == b""


async def test_a_dropped_webhook_is_healed_by_the_catch_up(xero):
    await xero.sim_call("POST", "/sim/webhooks/config", {"drop_next": 1})
    invoice = await xero.doc("invoices", [xero.line("W-1", 2, 10)])
    await wait_for(lambda: _dropped(xero))
    assert await xero.sale("invoice", invoice) is None
    await xero.sync_now()
    await xero.expect("invoice", invoice, "posted", "20", "4")


async def _dropped(xero) -> bool:
    return (await xero.stats())["webhooks_dropped"] >= 1


async def test_a_bank_transaction_arrives_by_catch_up_only_and_its_deletion_too(xero):
    receipt = await xero.doc("bank-transactions", [xero.line("W-1", 3, 10)])
    assert (await xero.sim_call("GET", "/sim/webhooks"))["log"] == []  # no webhook for bank transactions
    await xero.sync_now()
    await xero.expect("sales_receipt", receipt, "posted", "30", "6")
    await xero.sim_call("POST", f"/sim/{xero.org}/bank-transactions/{receipt}/delete")
    await xero.sync_now()
    await xero.expect("sales_receipt", receipt, "deleted", "0", "0")


@pytest.mark.xero_sim(rate_per_minute=4, minute_window=2.0)
async def test_xero_minute_limit_429_with_retry_after_is_backed_off(xero):
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("xero_api_requests_total", {"outcome": "throttled"}) or 0
    await xero.sim_call("POST", "/sim/throttle/reset", {})
    invoices = [await xero.doc("invoices", [xero.line("W-1", 1, 10)], date=f"2026-02-0{n}") for n in range(1, 8)]
    for invoice in invoices:
        await xero.expect("invoice", invoice, "posted", "10", "2", timeout=60)
    assert (await xero.stats())["throttled"] >= 1  # the simulator answered 429 (minute, Retry-After) …
    assert (REGISTRY.get_sample_value("xero_api_requests_total", {"outcome": "throttled"}) or 0) > before  # … we waited
