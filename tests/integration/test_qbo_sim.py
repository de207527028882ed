"""The QuickBooks Online simulator against docs/quickbooks-api.md: entity shapes, void/delete, CDC, query,
OAuth, throttling and signed webhooks (with retries and faults), on aiohttp test servers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import encode_basic_auth, web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import wait_for
from tools.qbo_sim import cli, payloads
from tools.qbo_sim.app import create_app
from tools.qbo_sim.config import SimConfig
from tools.qbo_sim.demo import DEMO_REALM_ID

VERIFIER = "sim-verifier-token"


class Receiver:
    """A webhook endpoint that records raw bodies and answers from a script of statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict]] = []
        self.statuses: list[int] = []
        self.sleep_first: float = 0.0
        app = web.Application()
        app.router.add_post("/webhooks/quickbooks", self.handle)
        self.server = TestServer(app)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((body, dict(request.headers)))
        if self.sleep_first:
            delay, self.sleep_first = self.sleep_first, 0.0
            await asyncio.sleep(delay)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/webhooks/quickbooks"))

    def bodies(self) -> list:
        return [json.loads(body) for body, _ in self.received]

    def events(self) -> list[dict]:
        return [event for body in self.bodies() for event in body]

    async def got(self, deliveries: int) -> bool:
        return len(self.received) >= deliveries


@pytest.fixture
async def receiver():
    rx = Receiver()
    await rx.server.start_server()
    yield rx
    await rx.server.close()


def sim_config(receiver: Receiver, **overrides) -> SimConfig:
    defaults = dict(
        webhook_url=receiver.url,
        webhook_batch_window=0.05,
        webhook_retry_schedule=[0.1, 0.2, 0.4],
        webhook_timeout=1.0,
        webhook_max_attempts=5,
    )
    return SimConfig(**{**defaults, **overrides})


async def start(config: SimConfig) -> TestClient:
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    return client


@pytest.fixture
async def sim(receiver):
    client = await start(sim_config(receiver))
    yield client
    await client.close()


async def ok(response, status: int = 200):
    assert response.status == status, await response.text()
    return json.loads(await response.text(), parse_float=Decimal)


class Company:
    """A realm with two inventory items, a service, a bundle and a bearer token."""

    def __init__(self, client: TestClient, realm: str, token: str, items: dict[str, str]):
        self.client, self.realm, self.token, self.items = client, realm, token, items

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    async def api(self, path: str, **params):
        return await self.client.get(
            f"/v3/company/{self.realm}/{path}", params={"minorversion": "75", **params}, headers=self.auth
        )

    async def sale(self, body: dict, entity: str = "invoice", notify: bool = True) -> dict:
        url = f"/sim/{self.realm}/{entity}" + ("" if notify else "?notify=false")
        return await ok(await self.client.post(url, json=body))

    async def flush(self) -> None:
        await ok(await self.client.post("/sim/webhooks/flush"))

    async def stats(self) -> dict:
        return await ok(await self.client.get(f"/sim/{self.realm}/stats"))


async def new_company(client: TestClient, notify: bool = False) -> Company:
    realm = (await ok(await client.post("/sim/companies", json={"home_currency": "USD"}), 201))["realm_id"]
    suffix = "" if notify else "?notify=false"
    items = {}
    for body in (
        {"name": "Widget", "sku": "W-100", "type": "Inventory", "unit_price": "12.50"},
        {"name": "Gadget", "sku": "G-300", "type": "Inventory", "unit_price": "40.00"},
        {"name": "Installation", "type": "Service", "unit_price": "75"},
    ):
        item = (await ok(await client.post(f"/sim/{realm}/items{suffix}", json=body)))["Item"]
        items[body.get("sku") or body["name"]] = item["Id"]
    kit = {
        "name": "Kit",
        "type": "Group",
        "components": [{"item_id": items["W-100"], "qty": "2"}, {"item_id": items["G-300"], "qty": "1"}],
    }
    items["KIT"] = (await ok(await client.post(f"/sim/{realm}/items{suffix}", json=kit)))["Item"]["Id"]
    token = (await ok(await client.post(f"/sim/{realm}/tokens"), 201))["access_token"]
    return Company(client, realm, token, items)


@pytest.fixture
async def company(sim) -> Company:
    return await new_company(sim)


def invoice_body(company: Company, qty: str = "3", price: str = "12.50", **extra) -> dict:
    return {
        "customer": "Bob",
        "txn_date": "2026-02-01",
        "lines": [{"item_id": company.items["W-100"], "qty": qty, "unit_price": price}],
        **extra,
    }


def signature(body: bytes, token: str = VERIFIER) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


# --- webhooks -------------------------------------------------------------------------------
def test_signature_matches_intuit_test_vector():
    body = (
        b'{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":[{"name":"Vendor",'
        b'"id":"40","operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},{"name":"Customer","id":"43",'
        b'"operation":"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}'
    )
    assert payloads.sign(body, "00faeec4-08d0-4996-bb37-698ae19f0149") == "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM="


async def test_cloudevents_webhook_is_signed_and_batched(sim, company, receiver):
    first = (await company.sale(invoice_body(company)))["Invoice"]
    await ok(await sim.post(f"/sim/{company.realm}/invoice/{first['Id']}", json={"customer": "Alice"}))
    await company.flush()
    assert len(receiver.received) == 1  # both changes within the batch window
    raw, headers = receiver.received[0]
    assert hmac.compare_digest(headers["intuit-signature"], signature(raw))
    events = json.loads(raw)
    assert isinstance(events, list)
    assert [e["type"] for e in events] == ["qbo.invoice.created.v1", "qbo.invoice.updated.v1"]
    for event in events:
        assert event["specversion"] == "1.0" and event["source"].startswith("intuit.")
        assert event["intuitaccountid"] == company.realm and event["intuitentityid"] == first["Id"]
        assert event["data"] == {} and event["time"].endswith("Z")
    assert len({e["id"] for e in events}) == 2
    assert (await company.stats())["webhooks_sent"] == 2


async def test_one_delivery_can_carry_several_realms(sim, receiver):
    a, b = await new_company(sim), await new_company(sim)
    await a.sale(invoice_body(a))
    await b.sale(invoice_body(b), entity="salesreceipt")
    await a.flush()
    assert len(receiver.received) == 1
    assert {(e["intuitaccountid"], e["type"]) for e in receiver.events()} == {
        (a.realm, "qbo.invoice.created.v1"),
        (b.realm, "qbo.salesreceipt.created.v1"),
    }


async def test_legacy_format_operations(sim, company, receiver):
    await ok(await sim.post("/sim/webhooks/config", json={"format": "legacy"}))
    inv = (await company.sale(invoice_body(company)))["Invoice"]
    await ok(await sim.post(f"/sim/{company.realm}/invoice/{inv['Id']}/void"))
    await ok(await sim.delete(f"/sim/{company.realm}/invoice/{inv['Id']}"))
    await ok(
        await sim.post(
            f"/sim/{company.realm}/items/{company.items['G-300']}/merge", json={"into": company.items["W-100"]}
        )
    )
    await company.flush()
    raw, headers = receiver.received[0]
    assert headers["intuit-signature"] == signature(raw)
    body = json.loads(raw)
    (notification,) = body["eventNotifications"]
    assert notification["realmId"] == company.realm
    entities = notification["dataChangeEvent"]["entities"]
    assert [(e["name"], e["operation"]) for e in entities] == [
        ("Invoice", "Create"),
        ("Invoice", "Void"),
        ("Invoice", "Delete"),
        ("Item", "Merge"),
    ]
    assert entities[3]["id"] == company.items["W-100"] and entities[3]["deletedId"] == company.items["G-300"]
    assert all(e["lastUpdated"].endswith("Z") for e in entities)


async def test_void_and_merge_cloudevent_types(sim, company, receiver):
    inv = (await company.sale(invoice_body(company)))["Invoice"]
    await ok(await sim.post(f"/sim/{company.realm}/invoice/{inv['Id']}/void"))
    await company.flush()  # the spelling applies to deliveries prepared after the change
    await ok(await sim.post("/sim/webhooks/config", json={"void_type": "void"}))
    receipt = (await company.sale(invoice_body(company), entity="salesreceipt"))["SalesReceipt"]
    await ok(await sim.post(f"/sim/{company.realm}/salesreceipt/{receipt['Id']}", json={"customer": "Eve"}))
    await ok(await sim.post(f"/sim/{company.realm}/salesreceipt/{receipt['Id']}/void"))
    await ok(
        await sim.post(
            f"/sim/{company.realm}/items/{company.items['G-300']}/merge", json={"into": company.items["W-100"]}
        )
    )
    await company.flush()
    events = receiver.events()
    assert [e["type"] for e in events] == [
        "qbo.invoice.created.v1",
        "qbo.invoice.voided.v1",
        "qbo.salesreceipt.created.v1",
        "qbo.salesreceipt.updated.v1",
        "qbo.salesreceipt.void.v1",
        "qbo.item.merged.v1",
    ]
    assert "data" not in events[3] and "datacontenttype" not in events[3]  # as on Intuit's data-objects page
    assert events[5]["data"] == {"deletedid": company.items["G-300"]}
    assert events[5]["intuitentityid"] == company.items["W-100"]


async def test_retry_after_500_resends_the_same_event_ids(sim, company, receiver):
    receiver.statuses = [500, 503]
    await company.sale(invoice_body(company))
    await company.flush()
    await wait_for(lambda: receiver.got(3), timeout=5)
    bodies = [body for body, _ in receiver.received]
    assert bodies[0] == bodies[1] == bodies[2]
    stats = await company.stats()
    assert stats["webhooks_sent"] == 1 and stats["webhook_failures"] == 2


async def test_timeout_is_a_failure_and_is_retried(receiver):
    client = await start(sim_config(receiver, webhook_timeout=0.2))
    try:
        company = await new_company(client)
        receiver.sleep_first = 0.5
        await company.sale(invoice_body(company))
        await company.flush()
        await wait_for(lambda: receiver.got(2), timeout=5)
        assert receiver.bodies()[0][0]["id"] == receiver.bodies()[1][0]["id"]
    finally:
        await client.close()


async def test_duplicate_drop_hold_and_notify_false(sim, company, receiver):
    await company.sale(invoice_body(company), notify=False)
    await ok(await sim.post("/sim/webhooks/config", json={"drop_next": 1}))
    await company.sale(invoice_body(company))  # dropped
    await company.flush()
    assert receiver.received == []
    assert (await company.stats())["webhooks_dropped"] == 1

    await ok(await sim.post("/sim/webhooks/config", json={"duplicate": 1.0}))
    third = (await company.sale(invoice_body(company)))["Invoice"]
    await company.flush()
    await wait_for(lambda: receiver.got(2), timeout=5)
    assert receiver.received[0][0] == receiver.received[1][0]
    assert receiver.events()[0]["intuitentityid"] == third["Id"]

    await ok(await sim.post("/sim/webhooks/config", json={"duplicate": 0, "drop": 1.0}))
    await company.sale(invoice_body(company))
    await company.flush()
    assert len(receiver.received) == 2

    await ok(await sim.post("/sim/webhooks/config", json={"drop": 0, "hold": True}))
    await company.sale(invoice_body(company))
    await company.flush()
    assert len(receiver.received) == 2
    await ok(await sim.post("/sim/webhooks/config", json={"hold": False}))
    await wait_for(lambda: receiver.got(3), timeout=5)


async def test_reorder_shuffles_a_batch(sim, company, receiver):
    await ok(await sim.post("/sim/webhooks/config", json={"reorder": True, "seed": 7}))
    for qty in range(1, 9):
        await company.sale(invoice_body(company, qty=str(qty)))
    await company.flush()
    ids = [int(e["intuitentityid"]) for e in receiver.events()]
    assert len(receiver.received) == 1 and len(ids) == 8
    assert ids != sorted(ids)  # seeded shuffle


async def test_bulk_invoices_go_out_in_batches_of_100(sim, company, receiver):
    body = {"count": 250, "item_id": company.items["W-100"], "qty": "2", "unit_price": "3.10"}
    result = await ok(await sim.post(f"/sim/{company.realm}/bulk-invoices", json=body), 201)
    assert result["created"] == 250
    await company.flush()
    assert [len(b) for b in receiver.bodies()] == [100, 100, 50]


# --- entities -------------------------------------------------------------------------------
async def test_read_envelope_sync_token_and_metadata(sim, company):
    created = (await company.sale(invoice_body(company)))["Invoice"]
    read = await ok(await company.api(f"invoice/{created['Id']}"))
    inv = read["Invoice"]
    assert set(read) == {"Invoice", "time"}
    assert inv["SyncToken"] == "0" and inv["DocNumber"] and inv["TxnDate"] == "2026-02-01"
    assert inv["CustomerRef"]["name"] == "Bob" and inv["CurrencyRef"] == {
        "value": "USD",
        "name": "United States Dollar",
    }
    assert "ExchangeRate" not in inv and "PrivateNote" not in inv  # empty fields are omitted
    line = inv["Line"][0]
    assert line["Amount"] == Decimal("37.50") and line["SalesItemLineDetail"]["Qty"] == 3
    assert inv["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert inv["TotalAmt"] == Decimal("37.50") and inv["TxnTaxDetail"]["TotalTax"] == 0
    await asyncio.sleep(1.01)
    await ok(
        await sim.post(
            f"/sim/{company.realm}/invoice/{created['Id']}",
            json={"lines": [{"item_id": company.items["W-100"], "qty": "4"}]},
        )
    )
    updated = (await ok(await company.api(f"invoice/{created['Id']}")))["Invoice"]
    assert updated["SyncToken"] == "1"
    assert updated["MetaData"]["CreateTime"] == inv["MetaData"]["CreateTime"]
    assert updated["MetaData"]["LastUpdatedTime"] > inv["MetaData"]["LastUpdatedTime"]
    assert updated["Line"][0]["SalesItemLineDetail"]["Qty"] == 4 and updated["CustomerRef"]["name"] == "Bob"
    raw = await (await company.api(f"invoice/{created['Id']}")).text()
    assert '"TotalAmt":50.00' in raw  # Decimal written exactly, as a JSON number


async def test_bundle_discount_description_and_tax(sim, company):
    body = {
        "customer": "Ann",
        "tax": "TaxExcluded",
        "tax_rate": "0.1",
        "private_note": "rush",
        "lines": [
            {"group_item_id": company.items["KIT"], "qty": "2"},
            {"description": "Thanks!"},
            {"subtotal": True},
            {"discount_percent": "10"},
        ],
    }
    inv = (await company.sale(body))["Invoice"]
    group = inv["Line"][0]
    assert group["DetailType"] == "GroupLineDetail" and group["GroupLineDetail"]["Quantity"] == 2
    inner = group["GroupLineDetail"]["Line"]
    assert [
        (line["SalesItemLineDetail"]["ItemRef"]["value"], line["SalesItemLineDetail"]["Qty"]) for line in inner
    ] == [(company.items["W-100"], 4), (company.items["G-300"], 2)]
    assert group["Amount"] == Decimal("130.00")
    assert inv["Line"][1] == {
        "Id": "4",
        "LineNum": 4,
        "Description": "Thanks!",
        "DetailType": "DescriptionOnly",
        "DescriptionLineDetail": {},
    }
    assert inv["Line"][2]["DetailType"] == "SubTotalLineDetail" and inv["Line"][2]["Amount"] == Decimal("130.00")
    discount = inv["Line"][3]
    assert discount["Amount"] == Decimal("13.00") and discount["DiscountLineDetail"]["PercentBased"] is True
    assert len(inv["Line"]) == 4  # the spec's own subtotal replaces the automatic one
    assert inv["TxnTaxDetail"]["TotalTax"] == Decimal("13.00")
    assert inv["TotalAmt"] == Decimal("130.00")  # 130 - 13 + 13
    assert inv["GlobalTaxCalculation"] == "TaxExcluded"


async def test_tax_inclusive_and_foreign_currency(sim, company):
    body = {
        "customer": "Hans",
        "currency": "EUR",
        "exchange_rate": "1.1",
        "tax": "TaxInclusive",
        "tax_rate": "0.2",
        "lines": [{"item_id": company.items["W-100"], "qty": "2", "unit_price": "12.00"}],
    }
    inv = (await company.sale(body))["Invoice"]
    line = inv["Line"][0]
    assert line["SalesItemLineDetail"]["TaxInclusiveAmt"] == Decimal("24.00")
    assert line["Amount"] == Decimal("20.00") and line["SalesItemLineDetail"]["UnitPrice"] == Decimal("10")
    assert inv["TxnTaxDetail"]["TotalTax"] == Decimal("4.00") and inv["TotalAmt"] == Decimal("24.00")
    assert inv["CurrencyRef"]["value"] == "EUR" and inv["ExchangeRate"] == Decimal("1.1")
    assert inv["HomeTotalAmt"] == Decimal("26.40")
    missing_rate = await sim.post(f"/sim/{company.realm}/invoice", json={**body, "exchange_rate": None})
    assert missing_rate.status == 400


async def test_void_shape(sim, company):
    body = {
        "customer": "Ann",
        "doc_number": "INV-9",
        "private_note": "call first",
        "tax_rate": "0.05",
        "lines": [
            {"item_id": company.items["W-100"], "qty": "3"},
            {"group_item_id": company.items["KIT"], "qty": "1"},
            {"discount_amount": "5"},
        ],
    }
    inv = (await company.sale(body))["Invoice"]
    voided = (await ok(await sim.post(f"/sim/{company.realm}/invoice/{inv['Id']}/void")))["Invoice"]
    read = (await ok(await company.api(f"invoice/{inv['Id']}")))["Invoice"]
    assert read == voided
    assert read["SyncToken"] == "1" and read["TxnDate"] == inv["TxnDate"] and read["DocNumber"] == "INV-9"
    assert read["PrivateNote"] == "Voided - call first"
    assert read["TotalAmt"] == 0 and read["Balance"] == 0 and read["TxnTaxDetail"] == {"TotalTax": 0}

    def sales_lines(lines):
        for line in lines:
            yield line
            yield from sales_lines(line.get("GroupLineDetail", {}).get("Line", []))

    for line in sales_lines(read["Line"]):
        if "Amount" in line:
            assert line["Amount"] == 0
        detail = line.get("SalesItemLineDetail")
        if detail:
            assert "Qty" not in detail and "UnitPrice" not in detail and detail["ItemRef"]["value"]
    assert len(list(sales_lines(read["Line"]))) == len(list(sales_lines(inv["Line"])))
    again = await sim.post(f"/sim/{company.realm}/invoice/{inv['Id']}/void")
    assert again.status == 400


async def test_deleted_and_unknown_read_as_fault_610(sim, company, receiver):
    inv = (await company.sale(invoice_body(company)))["Invoice"]
    deleted = await ok(await sim.delete(f"/sim/{company.realm}/invoice/{inv['Id']}"))
    assert deleted["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": inv["Id"]}
    for path in (f"invoice/{inv['Id']}", "invoice/99999", "creditmemo/1"):
        response = await company.api(path)
        assert response.status == 400
        body = await response.json()
        (error,) = body["Fault"]["Error"]
        assert error["code"] == "610" and error["Message"] == "Object Not Found" and "element" in error
        assert body["Fault"]["type"] == "ValidationFault" and "time" in body
    await company.flush()
    assert [e["type"] for e in receiver.events()] == ["qbo.invoice.created.v1", "qbo.invoice.deleted.v1"]


async def test_item_shape_delete_and_merge(sim, company):
    widget = (await ok(await company.api(f"item/{company.items['W-100']}")))["Item"]
    assert {k: widget[k] for k in ("Name", "Sku", "Type", "UnitPrice", "Active")} == {
        "Name": "Widget",
        "Sku": "W-100",
        "Type": "Inventory",
        "UnitPrice": Decimal("12.50"),
        "Active": True,
    }
    kit = (await ok(await company.api(f"item/{company.items['KIT']}")))["Item"]
    assert kit["Type"] == "Group" and len(kit["ItemGroupDetail"]["ItemGroupLine"]) == 2
    inv = (await company.sale({"lines": [{"item_id": company.items["G-300"], "qty": "1"}]}))["Invoice"]
    other = await ok(
        await sim.post(f"/sim/{company.realm}/items", json={"name": "Gadget 2", "sku": "G-301", "type": "Inventory"})
    )
    await ok(
        await sim.post(f"/sim/{company.realm}/items/{company.items['G-300']}/merge", json={"into": other["Item"]["Id"]})
    )
    merged = (await ok(await company.api(f"item/{company.items['G-300']}")))["Item"]
    assert merged["Active"] is False
    repointed = (await ok(await company.api(f"invoice/{inv['Id']}")))["Invoice"]
    assert repointed["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"] == other["Item"]["Id"]
    assert repointed["SyncToken"] == "1"
    active = await ok(await company.api("query", query="select * from Item"))
    assert company.items["G-300"] not in {i["Id"] for i in active["QueryResponse"]["Item"]}


# --- CDC and query -------------------------------------------------------------------------
async def test_cdc_envelope_with_deleted_stub_and_limits(receiver):
    client = await start(sim_config(receiver, cdc_max_objects=5))
    try:
        company = await new_company(client)
        since = datetime.now(UTC) - timedelta(seconds=1)
        keep = (await company.sale(invoice_body(company)))["Invoice"]
        gone = (await company.sale(invoice_body(company)))["Invoice"]
        await ok(await client.delete(f"/sim/{company.realm}/invoice/{gone['Id']}"))
        receipt = (await company.sale(invoice_body(company), entity="salesreceipt"))["SalesReceipt"]
        body = await ok(
            await company.api("cdc", entities="Invoice,SalesReceipt,CreditMemo", changedSince=since.isoformat())
        )
        (cdc,) = body["CDCResponse"]
        invoices, receipts, memos = cdc["QueryResponse"]
        assert [i["Id"] for i in invoices["Invoice"]] == [keep["Id"], gone["Id"]]
        stub = invoices["Invoice"][1]
        assert set(stub) == {"domain", "status", "Id", "MetaData"} and stub["status"] == "Deleted"
        assert set(stub["MetaData"]) == {"LastUpdatedTime"}
        assert invoices["Invoice"][0]["Line"]  # full entity
        assert receipts["SalesReceipt"][0]["Id"] == receipt["Id"] and memos == {}
        assert "time" in body

        for _ in range(4):
            await company.sale(invoice_body(company))
        capped = await ok(
            await company.api("cdc", entities="Invoice,SalesReceipt,Item", changedSince=since.isoformat())
        )
        assert (
            sum(
                len(v) for qr in capped["CDCResponse"][0]["QueryResponse"] for k, v in qr.items() if isinstance(v, list)
            )
            == 5
        )

        too_old = (datetime.now(UTC) - timedelta(days=31)).date().isoformat()
        response = await company.api("cdc", entities="Invoice", changedSince=too_old)
        assert response.status == 400
        fault = (await response.json())["Fault"]
        assert "older than" in fault["Error"][0]["Detail"]
    finally:
        await client.close()


async def test_query_paging_and_filters(sim, company):
    for qty in range(1, 8):
        await company.sale(invoice_body(company, qty=str(qty)))
    query = "select * from Invoice ORDERBY MetaData.LastUpdatedTime STARTPOSITION {} MAXRESULTS 3"
    pages = []
    for start in (1, 4, 7):
        body = await ok(await company.api("query", query=query.format(start)))
        pages.append(body["QueryResponse"])
    assert [len(p["Invoice"]) for p in pages] == [3, 3, 1]
    assert [p["startPosition"] for p in pages] == [1, 4, 7] and pages[2]["maxResults"] == 1
    ids = [i["Id"] for p in pages for i in p["Invoice"]]
    assert len(set(ids)) == 7
    empty = await ok(await company.api("query", query=query.format(8)))
    assert empty["QueryResponse"] == {}

    fourth = pages[1]["Invoice"][0]
    await ok(await sim.post(f"/sim/{company.realm}/invoice/{fourth['Id']}", json={"customer": "Zed"}))
    watermark = pages[2]["Invoice"][0]["MetaData"]["LastUpdatedTime"]
    changed = await ok(
        await company.api(
            "query",
            query=f"SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '{watermark}' "
            "ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000",
        )
    )
    assert changed["QueryResponse"]["Invoice"][-1]["Id"] == fourth["Id"]
    count = await ok(await company.api("query", query="select count(*) from Invoice where CustomerRef = '1'"))
    assert count["QueryResponse"] == {"totalCount": 6}
    bad = await company.api("query", query="select from where")
    assert bad.status == 400 and (await bad.json())["Fault"]["Error"][0]["code"] == "4000"
    skus = await ok(await company.api("query", query="select * from Item where Sku in ('W-100', 'G-300')"))
    assert {i["Sku"] for i in skus["QueryResponse"]["Item"]} == {"W-100", "G-300"}


async def test_query_maxresults_is_capped(receiver):
    client = await start(sim_config(receiver, query_max_results=4))
    try:
        company = await new_company(client)
        for _ in range(6):
            await company.sale(invoice_body(company))
        body = await ok(await company.api("query", query="select * from Invoice MAXRESULTS 5000"))
        assert len(body["QueryResponse"]["Invoice"]) == 4
    finally:
        await client.close()


# --- OAuth, auth faults, throttling -----------------------------------------------------------
async def test_oauth_code_flow_and_refresh_rotation(sim):
    redirect = "https://app.example/callback"
    response = await sim.get(
        "/appcenter/connect/oauth2",
        allow_redirects=False,
        params={
            "client_id": "sim-client",
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": redirect,
            "state": "xyz",
        },
    )
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    assert params["state"] == "xyz" and params["realmId"] == DEMO_REALM_ID

    basic = {"Authorization": encode_basic_auth("sim-client", "sim-secret"), "Accept": "application/json"}
    wrong = {"Authorization": encode_basic_auth("sim-client", "no")}
    bad = await sim.post(
        "/oauth2/v1/tokens/bearer",
        headers=wrong,
        data={"grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect},
    )
    assert bad.status == 401
    tokens = await ok(
        await sim.post(
            "/oauth2/v1/tokens/bearer",
            headers=basic,
            data={"grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect},
        )
    )
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert tokens["x_refresh_token_expires_in"] > 8_000_000
    reused = await sim.post(
        "/oauth2/v1/tokens/bearer",
        headers=basic,
        data={"grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect},
    )
    assert reused.status == 400 and (await reused.json()) == {"error": "invalid_grant"}

    demo = Company(sim, DEMO_REALM_ID, tokens["access_token"], {})
    assert (await demo.api("query", query="select count(*) from Invoice")).status == 200

    refreshed = await ok(
        await sim.post(
            "/oauth2/v1/tokens/bearer",
            headers=basic,
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
    )
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    old = await sim.post(
        "/oauth2/v1/tokens/bearer",
        headers=basic,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert old.status == 400 and (await old.json()) == {"error": "invalid_grant"}
    assert (await demo.stats())["token_refreshes"] == 2

    # Two refreshes racing with one token: one wins, the other gets invalid_grant (no grace period).
    race = await asyncio.gather(
        *(
            sim.post(
                "/oauth2/v1/tokens/bearer",
                headers=basic,
                data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
            )
            for _ in range(2)
        )
    )
    assert sorted(r.status for r in race) == [200, 400]
    assert (await demo.stats())["token_refreshes"] == 4
    refreshed = await next(r for r in race if r.status == 200).json()

    revoked = await sim.post("/v2/oauth2/tokens/revoke", headers=basic, json={"token": refreshed["refresh_token"]})
    assert revoked.status == 200
    demo.token = refreshed["access_token"]
    assert (await demo.api("query", query="select count(*) from Invoice")).status == 401
    after = await sim.post(
        "/oauth2/v1/tokens/bearer",
        headers=basic,
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
    )
    assert after.status == 400


async def test_expired_unknown_and_foreign_tokens(sim, company):
    inv = (await company.sale(invoice_body(company)))["Invoice"]
    assert (await company.api(f"invoice/{inv['Id']}")).status == 200
    await ok(await sim.post(f"/sim/{company.realm}/tokens/expire"))
    response = await company.api(f"invoice/{inv['Id']}")
    assert response.status == 401
    body = await response.json()
    assert body["fault"]["type"] == "AUTHENTICATION" and body["fault"]["error"][0]["code"] == "3200"
    assert "AuthenticationFailed" in body["fault"]["error"][0]["message"] and isinstance(body["time"], int)
    company.token = "garbage"
    assert (await company.api(f"invoice/{inv['Id']}")).status == 401
    other = await new_company(sim)
    company.token = other.token
    assert (await company.api(f"invoice/{inv['Id']}")).status == 403
    assert (await company.client.get(f"/v3/company/{company.realm}/invoice/{inv['Id']}")).status == 401


async def test_rate_limit_answers_429_with_xml_fault(receiver):
    client = await start(sim_config(receiver, rate_per_minute=5))
    try:
        company = await new_company(client)
        statuses = [(await company.api("query", query="select count(*) from Item")).status for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        response = await company.api("query", query="select count(*) from Item")
        text = await response.text()
        assert response.status == 429 and response.content_type == "application/xml"
        assert '<Error code="3001">' in text and "ThrottleExceeded" in text and "statusCode=429" in text
        stats = await company.stats()
        assert stats["throttled"] == 2 and stats["requests"] == 7
    finally:
        await client.close()


async def test_concurrency_limit(receiver):
    client = await start(sim_config(receiver, max_concurrent=2, api_latency=0.2))
    try:
        company = await new_company(client)
        responses = await asyncio.gather(*(company.api("query", query="select count(*) from Item") for _ in range(5)))
        assert sorted(r.status for r in responses) == [200, 200, 429, 429, 429]
        assert (await company.stats())["throttled"] == 3
    finally:
        await client.close()


# --- demo company and driver -------------------------------------------------------------------
async def test_demo_company_and_cli_driver(sim, receiver):
    created = await ok(await sim.post("/sim/companies", json={"realm_id": DEMO_REALM_ID, "demo": True}), 201)
    assert created == {"realm_id": DEMO_REALM_ID}
    items = (await ok(await sim.get(f"/sim/{DEMO_REALM_ID}/items")))["Item"]
    assert {"W-100", "W-200", "G-300"} <= {i.get("Sku") for i in items}
    assert {i["Type"] for i in items} == {"Inventory", "Service", "NonInventory", "Group"}
    base = str(sim.make_url("/"))
    await asyncio.to_thread(
        cli.main,
        [
            "--sim",
            base,
            "create-invoice",
            "--realm",
            DEMO_REALM_ID,
            "--customer",
            "Bob",
            "--item",
            "W-100",
            "--qty",
            "3",
            "--price",
            "12.50",
        ],
    )
    invoices = (await ok(await sim.get(f"/sim/{DEMO_REALM_ID}/invoice")))["Invoice"]
    new = max(invoices, key=lambda i: int(i["Id"]))
    assert new["CustomerRef"]["name"] == "Bob" and new["TotalAmt"] == Decimal("37.50")
    await asyncio.to_thread(
        cli.main, ["--sim", base, "edit-qty", "--realm", DEMO_REALM_ID, "--id", new["Id"], "--line", "1", "--qty", "4"]
    )
    await asyncio.to_thread(cli.main, ["--sim", base, "void", "--realm", DEMO_REALM_ID, "--id", new["Id"]])
    shown = await ok(await sim.get(f"/sim/{DEMO_REALM_ID}/invoice/{new['Id']}"))
    assert shown["voided"] and shown["spec"]["lines"][0]["qty"] == "4" and shown["entity"]["SyncToken"] == "2"
    await ok(await sim.post("/sim/webhooks/flush"))
    assert [e["type"] for e in receiver.events()][-3:] == [
        "qbo.invoice.created.v1",
        "qbo.invoice.updated.v1",
        "qbo.invoice.voided.v1",
    ]
