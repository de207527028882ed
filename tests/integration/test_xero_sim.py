"""The Xero simulator against docs/xero.md, driven like a client (aiohttp): OAuth with the consent page, refresh
rotation with grace, revocation, /connections; the Accounting API reads (envelope, lines only when paged or by
id, filters, If-Modified-Since, unitdp, line arithmetic, void/delete read-back); per-tenant limits; signed
webhooks (two tenants, sequences, duplicates, reordering, drops) and the intent-to-receive handshake; and, when
installed, the official xero-python SDK."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import encode_basic_auth, web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import wait_for
from tools.xero_sim.app import create_app
from tools.xero_sim.config import SimConfig

KEY = "sim-xero-webhook-key"
CLIENT_ID = "SIMXEROCLIENTID0000000000000000"
SECRET = "sim-xero-secret"
REDIRECT = "http://127.0.0.1:9999/callback"
API = "/api.xro/2.0"


def sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


class Receiver:
    """A webhook endpoint that checks ``x-xero-signature`` like a correct app: 401 when wrong, 200 and no body."""

    def __init__(self, verify: bool = True) -> None:
        self.verify = verify
        self.received: list[bytes] = []
        self.statuses: list[int] = []
        app = web.Application()
        app.router.add_post("/webhooks/xero", self.handle)
        self.server = TestServer(app)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.verify and not hmac.compare_digest(request.headers.get("x-xero-signature", ""), sign(body)):
            return web.Response(status=401)
        self.received.append(body)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/webhooks/xero"))

    def bodies(self) -> list[dict]:
        return [json.loads(b) for b in self.received if json.loads(b)["events"]]

    def events(self) -> list[dict]:
        return [e for b in self.bodies() for e in b["events"]]


@pytest.fixture
async def receiver():
    rx = Receiver()
    await rx.server.start_server()
    yield rx
    await rx.server.close()


async def start(**overrides) -> TestClient:
    defaults = dict(webhook_batch_window=0.05, webhook_retry_schedule=[0.1, 0.2], webhook_timeout=1.0)
    client = TestClient(TestServer(create_app(SimConfig(**{**defaults, **overrides}))))
    await client.start_server()
    return client


@pytest.fixture
async def sim(receiver):
    client = await start(webhook_url=receiver.url)
    yield client
    await client.close()


async def new_org(client: TestClient, name: str = "Acme NZ", base: str = "NZD") -> str:
    response = await client.post("/sim/orgs", json={"name": name, "base_currency": base})
    assert response.status == 201
    return (await response.json())["tenant_id"]


async def token(client: TestClient, tenant: str) -> dict:
    response = await client.post(f"/sim/{tenant}/tokens")
    assert response.status == 201
    return await response.json()


def headers(tok: dict, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok['access_token']}", "xero-tenant-id": tenant, "Accept": "application/json"}


async def setup_org(client: TestClient, base: str = "NZD") -> tuple[str, dict[str, str]]:
    tenant = await new_org(client, base=base)
    for code in ("W-100", "W-200"):
        assert (await client.post(f"/sim/{tenant}/items", json={"code": code, "sale_price": "12.3456"})).status == 201
    return tenant, headers(await token(client, tenant), tenant)


def line(code: str = "W-100", qty: str = "3", unit: str = "23.00", **extra) -> dict:
    return {"item_code": code, "quantity": qty, "unit_amount": unit, **extra}


async def invoice(client: TestClient, tenant: str, notify: bool = True, **body) -> dict:
    body.setdefault("status", "AUTHORISED")
    body.setdefault("lines", [line()])
    response = await client.post(f"/sim/{tenant}/invoices" + ("" if notify else "?notify=false"), json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def get(client: TestClient, path: str, hdrs: dict[str, str], **params) -> dict:
    response = await client.get(API + path, headers=hdrs, params=params)
    assert response.status == 200, await response.text()
    return json.loads(await response.text(), parse_float=Decimal)


# --- health, OAuth, connections ---------------------------------------------------------------
async def test_healthz(sim):
    response = await sim.get("/healthz")
    assert response.status == 200 and (await response.json()) == {"status": "ok"}


async def test_consent_page_code_exchange_connections_refresh_and_revoke(sim):
    a = await new_org(sim, "Alpha Ltd")
    await new_org(sim, "Beta Ltd")
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "scope": "openid offline_access accounting.transactions.read accounting.settings.read",
    }
    page = await sim.get("/identity/connect/authorize", params=params)
    assert page.status == 200
    html = await page.text()
    assert "Alpha Ltd" in html and "Beta Ltd" in html and 'name="tenant"' in html
    # The user unticks Beta and allows.
    form = {k: v for k, v in params.items()} | {"tenant": a, "decision": "allow"}
    response = await sim.post("/identity/connect/authorize", data=form, allow_redirects=False)
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    auth = {"Authorization": encode_basic_auth(CLIENT_ID, SECRET)}
    exchanged = await sim.post(
        "/connect/token",
        headers=auth,
        data={"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT},
    )
    tokens = await exchanged.json()
    assert exchanged.status == 200 and tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer"
    assert {"access_token", "refresh_token", "id_token"} <= tokens.keys()
    # The code is single use.
    again = await sim.post(
        "/connect/token",
        headers=auth,
        data={"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT},
    )
    assert again.status == 400 and (await again.json())["error"] == "invalid_grant"

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    connections = await (await sim.get("/connections", headers=bearer)).json()
    assert [(c["tenantId"], c["tenantType"], c["tenantName"]) for c in connections] == [
        (a, "ORGANISATION", "Alpha Ltd")
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", connections[0]["createdDateUtc"])

    # Rotation: a new refresh token each time; the old one still works within the grace period.
    first = await (
        await sim.post(
            "/connect/token",
            headers=auth,
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
    ).json()
    assert first["refresh_token"] != tokens["refresh_token"]
    retry = await sim.post(
        "/connect/token", headers=auth, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert retry.status == 200
    latest = (await retry.json())["refresh_token"]

    # Revocation ends the grant: refresh fails, the connections are gone.
    assert (await sim.post("/connect/revocation", headers=auth, data={"token": latest})).status == 200
    dead = await sim.post("/connect/token", headers=auth, data={"grant_type": "refresh_token", "refresh_token": latest})
    assert dead.status == 400 and (await dead.json())["error"] == "invalid_grant"


async def test_no_grace_means_the_old_refresh_token_fails_and_bad_params_get_an_error_page():
    client = await start(refresh_grace=0)
    try:
        tenant = await new_org(client)
        tok = await token(client, tenant)
        auth = {"Authorization": encode_basic_auth(CLIENT_ID, SECRET)}
        ok = await client.post(
            "/connect/token", headers=auth, data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
        )
        assert ok.status == 200
        await asyncio.sleep(0.01)
        old = await client.post(
            "/connect/token", headers=auth, data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
        )
        assert old.status == 400 and (await old.json())["error"] == "invalid_grant"
        bad = await client.get(
            "/identity/connect/authorize",
            params={
                "response_type": "code",
                "client_id": "nope",
                "redirect_uri": REDIRECT,
                "scope": "accounting.transactions",
            },
        )
        assert bad.status == 400 and "text/html" in bad.headers["Content-Type"]
        denied = await client.get(
            "/identity/connect/authorize",
            allow_redirects=False,
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT,
                "state": "s",
                "scope": "accounting.transactions",
                "sim_consent": "deny",
            },
        )
        assert parse_qs(urlsplit(denied.headers["Location"]).query) == {"error": ["access_denied"], "state": ["s"]}
    finally:
        await client.close()


async def test_auth_errors_and_disconnect(sim):
    tenant, hdrs = await setup_org(sim)
    other = await new_org(sim, "Other")
    missing = await sim.get(API + "/Invoices", headers={"xero-tenant-id": tenant})
    assert missing.status == 401 and (await missing.json())["Title"] == "Unauthorized"
    wrong = await sim.get(API + "/Invoices", headers={**hdrs, "xero-tenant-id": other})
    assert wrong.status == 403
    no_tenant = await sim.get(API + "/Invoices", headers={"Authorization": hdrs["Authorization"]})
    assert no_tenant.status == 403
    await sim.post(f"/sim/{tenant}/tokens/expire")
    expired = await sim.get(API + "/Invoices", headers=hdrs)
    assert expired.status == 401 and (await expired.json())["Detail"].startswith("TokenExpired")
    tok = await token(sim, tenant)
    bearer = {"Authorization": f"Bearer {tok['access_token']}"}
    assert (await sim.delete(f"/connections/{tok['connection_id']}", headers=bearer)).status == 204
    assert (await sim.delete(f"/connections/{tok['connection_id']}", headers=bearer)).status == 404
    assert (await sim.get(API + "/Invoices", headers=headers(tok, tenant))).status == 403


# --- Accounting API reads -------------------------------------------------------------------
async def test_envelope_lines_only_when_paged_or_by_id_and_404_is_plain_text(sim):
    tenant, hdrs = await setup_org(sim)
    inv = await invoice(sim, tenant, notify=False)
    listed = await get(sim, "/Invoices", hdrs)
    assert listed["Status"] == "OK" and listed["DateTimeUTC"].startswith("/Date(")
    assert "LineItems" not in listed["Invoices"][0] and "pagination" not in listed
    paged = await get(sim, "/Invoices", hdrs, page="1")
    assert paged["Invoices"][0]["LineItems"][0]["ItemCode"] == "W-100"
    assert paged["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": 1}
    by_id = await get(sim, f"/Invoices/{inv['InvoiceID']}", hdrs)
    by_number = await get(sim, f"/Invoices/{inv['InvoiceNumber']}", hdrs)
    assert by_id["Invoices"][0]["LineItems"] and by_number["Invoices"][0]["InvoiceID"] == inv["InvoiceID"]
    assert re.fullmatch(r"/Date\(\d+\+0000\)/", by_id["Invoices"][0]["Date"])
    missing = await sim.get(API + "/Invoices/00000000-0000-0000-0000-000000000000", headers=hdrs)
    assert missing.status == 404 and await missing.text() == "The resource you're looking for cannot be found"


async def test_paging_100_per_page_and_page_size(sim):
    tenant, hdrs = await setup_org(sim)
    for _ in range(105):
        await invoice(sim, tenant, notify=False)
    page1 = await get(sim, "/Invoices", hdrs, page="1")
    page2 = await get(sim, "/Invoices", hdrs, page="2")
    assert len(page1["Invoices"]) == 100 and len(page2["Invoices"]) == 5
    assert page2["pagination"] == {"page": 2, "pageSize": 100, "pageCount": 2, "itemCount": 105}
    small = await get(sim, "/Invoices", hdrs, page="3", pageSize="50")
    assert len(small["Invoices"]) == 5
    too_big = await sim.get(API + "/Invoices", headers=hdrs, params={"page": "1", "pageSize": "1001"})
    assert too_big.status == 400


async def test_filters_where_statuses_ids_and_if_modified_since(sim):
    tenant, hdrs = await setup_org(sim)
    draft = await invoice(sim, tenant, status="DRAFT")
    sale = await invoice(sim, tenant, reference="Order 7")
    bill = await invoice(sim, tenant, type="ACCPAY")
    ids = lambda body: {i["InvoiceID"] for i in body["Invoices"]}  # noqa: E731
    assert ids(await get(sim, "/Invoices", hdrs, where='Type=="ACCREC"')) == {draft["InvoiceID"], sale["InvoiceID"]}
    assert ids(await get(sim, "/Invoices", hdrs, where='Type=="ACCREC" AND Status=="AUTHORISED"')) == {
        sale["InvoiceID"]
    }
    assert ids(await get(sim, "/Invoices", hdrs, Statuses="DRAFT,PAID")) == {draft["InvoiceID"]}
    assert ids(await get(sim, "/Invoices", hdrs, IDs=f"{bill['InvoiceID']},{sale['InvoiceID']}")) == {
        bill["InvoiceID"],
        sale["InvoiceID"],
    }
    bad = await sim.get(API + "/Invoices", headers=hdrs, params={"where": 'Nonsense=="x"'})
    assert bad.status == 400
    await asyncio.sleep(1.05)
    since = (await get(sim, "/Organisation", hdrs))["DateTimeUTC"]
    stamp = int(re.search(r"\d+", since).group()) / 1000
    from datetime import UTC, datetime

    header = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    await sim.post(f"/sim/{tenant}/invoices/{draft['InvoiceID']}/authorise")
    changed = await sim.get(API + "/Invoices", headers={**hdrs, "If-Modified-Since": header}, params={"page": "1"})
    assert ids(json.loads(await changed.text())) == {draft["InvoiceID"]}


async def test_line_arithmetic_unitdp_and_void_delete_read_back(sim):
    tenant, hdrs = await setup_org(sim)
    gst = "15"
    inclusive = await invoice(
        sim, tenant, line_amount_types="Inclusive", lines=[line(discount_rate="10", tax_rate=gst)]
    )
    body = (await get(sim, f"/Invoices/{inclusive['InvoiceID']}", hdrs))["Invoices"][0]
    li = body["LineItems"][0]
    assert (li["LineAmount"], li["TaxAmount"]) == (Decimal("62.10"), Decimal("8.10"))
    assert (body["SubTotal"], body["TotalTax"], body["Total"]) == (Decimal("54.00"), Decimal("8.10"), Decimal("62.10"))
    exclusive = await invoice(sim, tenant, lines=[line(discount_amount="6.90", tax_rate=gst)])
    assert (exclusive["SubTotal"], exclusive["TotalTax"], exclusive["Total"]) == (62.10, 9.32, 71.42)
    notax = await invoice(sim, tenant, line_amount_types="NoTax", lines=[line(unit="19.9951", tax_rate=gst)])
    two = (await get(sim, f"/Invoices/{notax['InvoiceID']}", hdrs))["Invoices"][0]["LineItems"][0]
    four = (await get(sim, f"/Invoices/{notax['InvoiceID']}", hdrs, unitdp="4"))["Invoices"][0]["LineItems"][0]
    assert (two["UnitAmount"], four["UnitAmount"], two["TaxAmount"]) == (Decimal("20.00"), Decimal("19.9951"), 0)
    assert two["LineAmount"] == Decimal("59.99")  # 3 × 19.9951 = 59.9853

    void = await sim.post(f"/sim/{tenant}/invoices/{exclusive['InvoiceID']}/void")
    assert void.status == 200
    voided = (await get(sim, f"/Invoices/{exclusive['InvoiceID']}", hdrs))["Invoices"][0]
    assert voided["Status"] == "VOIDED" and voided["Total"] == Decimal("71.42") and voided["LineItems"]
    assert (await sim.post(f"/sim/{tenant}/invoices/{inclusive['InvoiceID']}/delete")).status == 400
    draft = await invoice(sim, tenant, status="DRAFT")
    assert (await sim.post(f"/sim/{tenant}/invoices/{draft['InvoiceID']}/delete")).status == 200
    deleted = (await get(sim, f"/Invoices/{draft['InvoiceID']}", hdrs))["Invoices"][0]
    assert deleted["Status"] == "DELETED"
    assert (await sim.post(f"/sim/{tenant}/invoices/{draft['InvoiceID']}", json={"reference": "x"})).status == 400


async def test_foreign_currency_credit_notes_bank_transactions_items_organisation(sim):
    tenant, hdrs = await setup_org(sim)
    usd = await invoice(sim, tenant, currency_code="USD", currency_rate="0.6")
    assert (usd["CurrencyCode"], usd["CurrencyRate"]) == ("USD", 0.6)
    assert (await sim.post(f"/sim/{tenant}/invoices", json={"currency_code": "USD", "lines": [line()]})).status == 400
    cn = await (await sim.post(f"/sim/{tenant}/credit-notes", json={"status": "AUTHORISED", "lines": [line()]})).json()
    assert cn["Type"] == "ACCRECCREDIT" and cn["CreditNoteNumber"].startswith("CN-")
    rejected = await sim.post(f"/sim/{tenant}/credit-notes", json={"lines": [line(discount_rate="5")]})
    assert rejected.status == 400
    bt = await (await sim.post(f"/sim/{tenant}/bank-transactions", json={"lines": [line()]})).json()
    assert (bt["Type"], bt["Status"]) == ("RECEIVE", "AUTHORISED")
    assert (await get(sim, "/CreditNotes", hdrs, page="1"))["CreditNotes"][0]["LineItems"]
    listed = await get(sim, "/BankTransactions", hdrs, where='Type=="RECEIVE"')
    assert [b["BankTransactionID"] for b in listed["BankTransactions"]] == [bt["BankTransactionID"]]
    assert (await get(sim, f"/BankTransactions/{bt['BankTransactionID']}", hdrs))["BankTransactions"][0]["LineItems"]
    items = (await get(sim, "/Items", hdrs))["Items"]
    assert [i["Code"] for i in items] == ["W-100", "W-200"] and items[0]["SalesDetails"]["UnitPrice"] == Decimal(
        "12.35"
    )
    assert (await get(sim, "/Items", hdrs, unitdp="4"))["Items"][0]["SalesDetails"]["UnitPrice"] == Decimal("12.3456")
    assert (await get(sim, "/Organisation", hdrs))["Organisations"][0]["BaseCurrency"] == "NZD"


# --- limits ---------------------------------------------------------------------------------
async def test_minute_limit_429_with_retry_after_and_problem_header():
    client = await start(rate_per_minute=3)
    try:
        tenant, hdrs = await setup_org(client)
        remaining = []
        for _ in range(3):
            response = await client.get(API + "/Invoices", headers=hdrs)
            assert response.status == 200
            remaining.append(response.headers["X-MinLimit-Remaining"])
        assert remaining == ["2", "1", "0"] and response.headers["X-DayLimit-Remaining"] == "4997"
        limited = await client.get(API + "/Invoices", headers=hdrs)
        assert limited.status == 429 and limited.headers["X-Rate-Limit-Problem"] == "minute"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        _, other_hdrs = await setup_org(client)
        assert (await client.get(API + "/Invoices", headers=other_hdrs)).status == 200  # per tenant
        stats = await (await client.get(f"/sim/{tenant}/stats")).json()
        assert stats["throttled"] == 1
    finally:
        await client.close()


async def test_concurrent_limit():
    client = await start(max_concurrent=1, api_latency=0.2)
    try:
        _, hdrs = await setup_org(client)
        first, second = await asyncio.gather(
            client.get(API + "/Invoices", headers=hdrs), client.get(API + "/Invoices", headers=hdrs)
        )
        statuses = sorted([first.status, second.status])
        assert statuses == [200, 429]
        limited = first if first.status == 429 else second
        assert limited.headers["X-Rate-Limit-Problem"] == "concurrent"
    finally:
        await client.close()


# --- webhooks -------------------------------------------------------------------------------
async def test_signed_events_two_tenants_one_delivery_sequences_and_no_bank_transaction_events(sim, receiver):
    a, _ = await setup_org(sim)
    b, _ = await setup_org(sim)
    await sim.post("/sim/webhooks/config", json={"hold": True})
    inv = await invoice(sim, a)
    cn = await (await sim.post(f"/sim/{b}/credit-notes", json={"status": "AUTHORISED", "lines": [line()]})).json()
    await sim.post(f"/sim/{a}/bank-transactions", json={"lines": [line()]})
    await sim.post(f"/sim/{a}/items", json={"code": "W-300"})
    await sim.post("/sim/webhooks/config", json={"hold": False})
    await sim.post("/sim/webhooks/flush")
    await wait_for(lambda: len(receiver.bodies()) >= 1)
    [body] = receiver.bodies()
    assert (body["firstEventSequence"], body["lastEventSequence"]) == (1, 2) and len(body["entropy"]) == 20
    first, second = body["events"]
    assert first == {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{inv['InvoiceID']}",
        "resourceId": inv["InvoiceID"],
        "tenantId": a,
        "tenantType": "ORGANISATION",
        "eventCategory": "INVOICE",
        "eventType": "CREATE",
        "eventDateUtc": first["eventDateUtc"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", first["eventDateUtc"])
    assert (second["tenantId"], second["eventCategory"], second["data"]) == (
        b,
        "CREDITNOTE",
        {"Type": "ACCRECCREDIT", "Status": "AUTHORISED"},
    )
    assert second["resourceId"] == cn["CreditNoteID"]
    # A void is an UPDATE.
    await sim.post(f"/sim/{a}/invoices/{inv['InvoiceID']}/void")
    await wait_for(lambda: len(receiver.events()) >= 3)
    assert receiver.events()[2]["eventType"] == "UPDATE" and receiver.bodies()[1]["firstEventSequence"] == 3


async def test_retries_duplicates_reordering_and_drops(sim, receiver):
    tenant, _ = await setup_org(sim)
    receiver.statuses = [500]
    await invoice(sim, tenant)
    await wait_for(lambda: len(receiver.received) >= 2)
    assert receiver.received[0] == receiver.received[1]  # a retry resends the same body
    await sim.post("/sim/webhooks/config", json={"duplicate": 1.0, "seed": 1})
    await invoice(sim, tenant)
    await wait_for(lambda: len(receiver.received) >= 4)
    assert receiver.received[2] == receiver.received[3]
    await sim.post("/sim/webhooks/config", json={"duplicate": 0.0, "reorder": True, "hold": True, "seed": 3})
    made = [(await invoice(sim, tenant))["InvoiceID"] for _ in range(6)]
    await sim.post("/sim/webhooks/config", json={"hold": False})
    await sim.post("/sim/webhooks/flush")
    await wait_for(lambda: len(receiver.events()) >= 8)
    got = [e["resourceId"] for e in receiver.bodies()[-1]["events"]]
    assert sorted(got) == sorted(made) and got != made
    await sim.post("/sim/webhooks/config", json={"reorder": False, "drop_next": 1})
    dropped = await invoice(sim, tenant)
    kept = await invoice(sim, tenant)
    await wait_for(lambda: any(e["resourceId"] == kept["InvoiceID"] for e in receiver.events()))
    assert all(e["resourceId"] != dropped["InvoiceID"] for e in receiver.events())
    stats = await (await sim.get(f"/sim/{tenant}/stats")).json()
    assert stats["webhooks_dropped"] == 1 and stats["webhooks_duplicated"] == 1 and stats["webhook_failures"] == 1


async def test_intent_to_receive_handshake(sim, receiver):
    result = await (await sim.post("/sim/webhooks/intent-to-receive")).json()
    assert result["passed"] is True and result["status"] == "OK"
    assert sorted(r["signature"] for r in result["results"]) == ["bad", "good"]
    assert all(
        json.loads(b) == {**json.loads(b), "events": [], "firstEventSequence": 0, "lastEventSequence": 0}
        for b in receiver.received
    )
    careless = Receiver(verify=False)  # answers 200 to everything: fails the handshake
    await careless.server.start_server()
    try:
        failed = await (await sim.post("/sim/webhooks/intent-to-receive", json={"url": careless.url})).json()
        assert failed["passed"] is False and failed["status"] == "FAILED"
        bad = next(r for r in failed["results"] if r["signature"] == "bad")
        assert bad["status"] == 200 and bad["passed"] is False
    finally:
        await careless.server.close()


async def test_require_itr_holds_back_events_until_the_handshake_passes(receiver):
    client = await start(webhook_url=receiver.url, require_itr=True)
    try:
        tenant, _ = await setup_org(client)
        await invoice(client, tenant)
        await client.post("/sim/webhooks/flush")
        assert receiver.events() == []
        assert (await (await client.post("/sim/webhooks/intent-to-receive")).json())["passed"]
        await invoice(client, tenant)
        await wait_for(lambda: len(receiver.events()) == 1)
    finally:
        await client.close()


# --- the official SDK ------------------------------------------------------------------------
async def test_xero_python_sdk_reads_the_simulator(sim):
    xero_python = pytest.importorskip("xero_python")
    from xero_python.accounting import AccountingApi
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
    from xero_python.identity import IdentityApi

    del xero_python
    tenant, _ = await setup_org(sim)
    inv = await invoice(sim, tenant, line_amount_types="Inclusive", lines=[line(discount_rate="10", tax_rate="15")])
    tok = await token(sim, tenant)
    base = str(sim.make_url("")).rstrip("/")
    store: dict = {
        "token": {k: tok[k] for k in ("access_token", "refresh_token", "id_token", "token_type", "expires_in", "scope")}
    }
    store["token"]["scope"] = store["token"]["scope"].split()
    client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=SECRET)),
        oauth2_token_getter=lambda: store["token"],
        oauth2_token_saver=lambda t: store.update(token=t),
    )

    def run() -> tuple:
        TokenApi.refresh_token_url = base + "/connect/token"
        accounting = AccountingApi(client, base_url=base + API)
        identity = IdentityApi(client, base_url=base)
        connections = identity.get_connections()
        orgs = accounting.get_organisations(tenant)
        invoices = accounting.get_invoices(tenant, page=1, unitdp=4)
        one = accounting.get_invoice(tenant, inv["InvoiceID"])
        refreshed = client.refresh_oauth2_token()
        after = accounting.get_invoices(tenant, statuses=["AUTHORISED"])
        return connections, orgs, invoices, one, refreshed, after

    try:
        connections, orgs, invoices, one, refreshed, after = await asyncio.to_thread(run)
    finally:
        from xero_python.api_client.oauth2 import TokenApi as _TokenApi

        _TokenApi.refresh_token_url = "https://identity.xero.com/connect/token"
    assert str(connections[0].tenant_id) == tenant
    assert orgs.organisations[0].base_currency.value == "NZD"
    got = invoices.invoices[0]
    amounts = (got.line_items[0].line_amount, got.line_items[0].tax_amount, got.sub_total)
    assert tuple(Decimal(str(a)) for a in amounts) == (Decimal("62.10"), Decimal("8.10"), Decimal("54.00"))
    assert got.line_amount_types.value == "Inclusive" and got.status == "AUTHORISED"
    assert one.invoices[0].date.isoformat() == inv["DateString"][:10]
    assert refreshed["refresh_token"] != tok["refresh_token"]
    assert [str(i.invoice_id) for i in after.invoices] == [inv["InvoiceID"]]
