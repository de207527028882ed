"""The simulator driven by real QuickBooks clients, as an app developer would use them:
intuit-oauth's ``AuthClient`` (authorization code, refresh-token rotation, revoke) and
python-quickbooks (reads, query language, paging, CDC, writes). Both are synchronous (requests),
so they run in threads against the simulator served on a real port.

Pointing them at the simulator: ``AuthClient(environment=<discovery document URL>)`` (intuit-oauth
treats an environment that is neither sandbox nor production as the URL of its OpenID discovery
document, which the simulator serves), ``QuickBooks.api_url_v3`` overridden on the client, and
``OAUTHLIB_INSECURE_TRANSPORT=1`` because requests-oauthlib refuses bearer tokens over plain HTTP.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from aiohttp.test_utils import TestServer
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import (
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
    SevereException,
    UnsupportedException,
    ValidationException,
)
from quickbooks.objects.base import Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import (
    DiscountLine,
    DiscountLineDetail,
    GroupLine,
    GroupLineDetail,
    SalesItemLine,
    SalesItemLineDetail,
)
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.salesreceipt import SalesReceipt

from tests.conftest import wait_for
from tests.integration.test_qbo_sim import VERIFIER, Receiver, sim_config
from tools.qbo_sim import timefmt
from tools.qbo_sim.app import create_app

CLIENT_ID, CLIENT_SECRET = "sim-client", "sim-secret"
REDIRECT_URI = "https://app.example.com/oauth/callback"


@pytest.fixture
async def receiver():
    rx = Receiver()
    await rx.server.start_server()
    yield rx
    await rx.server.close()


@pytest.fixture
async def sim(receiver, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    server = TestServer(create_app(sim_config(receiver)), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def control(base: str, method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(method, base + path, json=body, timeout=10)
    assert response.status_code < 300, response.text
    return response.json() if response.content else {}


def auth_client(base: str, **kwargs) -> AuthClient:
    return AuthClient(
        kwargs.pop("client_id", CLIENT_ID),
        kwargs.pop("client_secret", CLIENT_SECRET),
        REDIRECT_URI,
        environment=f"{base}/.well-known/openid_configuration/",
        **kwargs,
    )


def authorize(base: str, realm: str) -> AuthClient:
    """The consent round trip: the user opens the authorization URL and picks the company ``realm``."""
    auth = auth_client(base)
    url = auth.get_authorization_url([Scopes.ACCOUNTING])
    redirect = requests.get(f"{url}&realm={realm}", allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    callback = parse_qs(urlsplit(location).query)
    assert callback["state"] == [auth.state_token]
    auth.get_bearer_token(callback["code"][0], realm_id=callback["realmId"][0])
    return auth


def connect(base: str, realm: str) -> tuple[AuthClient, QuickBooks]:
    auth = authorize(base, realm)
    qb = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=realm, minorversion=75)
    qb.api_url_v3 = f"{base}/v3"
    return auth, qb


def new_company(base: str, demo: bool = True) -> str:
    return control(base, "POST", "/sim/companies", {"demo": demo})["realm_id"]


def run(fn, *args, **kwargs):
    return asyncio.to_thread(fn, *args, **kwargs)


# --- OAuth ----------------------------------------------------------------------------------
async def test_oauth_code_exchange_refresh_rotation_and_revoke(sim):
    realm = await run(new_company, sim)

    def flow() -> None:
        auth = auth_client(sim)
        assert auth.token_endpoint == f"{sim}/oauth2/v1/tokens/bearer"
        assert auth.auth_endpoint == f"{sim}/appcenter/connect/oauth2"
        assert auth.revoke_endpoint == f"{sim}/v2/oauth2/tokens/revoke"
        auth = authorize(sim, realm)
        assert auth.realm_id == realm
        assert auth.access_token and auth.refresh_token
        assert auth.expires_in == 3600 and auth.x_refresh_token_expires_in > 8_000_000

        # A code is single use.
        again = auth_client(sim)
        url = again.get_authorization_url([Scopes.ACCOUNTING])
        code = parse_qs(
            urlsplit(requests.get(f"{url}&realm={realm}", allow_redirects=False, timeout=10).headers["Location"]).query
        )["code"][0]
        again.get_bearer_token(code, realm_id=realm)
        with pytest.raises(AuthClientError) as reused:
            again.get_bearer_token(code, realm_id=realm)
        assert reused.value.status_code == 400 and json.loads(reused.value.content)["error"] == "invalid_grant"

        # Refresh rotates the refresh token; the old one is dead at once.
        old_refresh, old_access = auth.refresh_token, auth.access_token
        auth.refresh()
        assert auth.refresh_token != old_refresh and auth.access_token != old_access
        stale = auth_client(sim)
        with pytest.raises(AuthClientError) as rotated:
            stale.refresh(refresh_token=old_refresh)
        assert rotated.value.status_code == 400 and json.loads(rotated.value.content)["error"] == "invalid_grant"
        newer = auth_client(sim)
        newer.refresh(refresh_token=auth.refresh_token)  # the newest one works (and rotates again)
        assert newer.refresh_token not in (auth.refresh_token, old_refresh)

        with pytest.raises(AuthClientError) as bad_client:
            auth_client(sim, client_secret="wrong").refresh(refresh_token=newer.refresh_token)
        assert bad_client.value.status_code == 401

        # The client works with the refreshed tokens, then revoke ends the grant.
        qb = QuickBooks(auth_client=newer, refresh_token=newer.refresh_token, company_id=realm, minorversion=75)
        qb.api_url_v3 = f"{sim}/v3"
        assert Item.count(qb=qb) > 0
        assert newer.revoke() is True
        with pytest.raises(AuthorizationException):
            Item.count(qb=qb)
        with pytest.raises(AuthClientError):
            auth_client(sim).refresh(refresh_token=newer.refresh_token)

    await run(flow)


# --- reads, query language, paging ---------------------------------------------------------
async def test_reads_query_count_and_paging(sim):
    realm = await run(new_company, sim)

    def reads() -> None:
        _, qb = connect(sim, realm)
        expected = {
            name: len(control(sim, "GET", f"/sim/{realm}/{name.lower()}")[name])
            for name in ("Invoice", "SalesReceipt", "CreditMemo")
        }
        for cls in (Invoice, SalesReceipt, CreditMemo):
            rows = cls.all(qb=qb)
            assert len(rows) == expected[cls.qbo_object_name] == cls.count(qb=qb) > 0
            one = cls.get(rows[0].Id, qb=qb)
            assert one.Id == rows[0].Id and one.SyncToken == rows[0].SyncToken
            assert one.CustomerRef.value and one.Line
            assert cls.query(f"SELECT * FROM {cls.qbo_object_name} WHERE Id = '{one.Id}'", qb=qb)[0].Id == one.Id

        # Item.all() sends "SELECT *, Sku FROM Item"; Sku comes back.
        items = Item.all(qb=qb)
        assert {"W-100", "W-200", "G-300", "KIT-1"} <= {item.Sku for item in items}
        kit = Item.filter(Sku="KIT-1", qb=qb)[0]
        assert kit.Type == "Group" and len(kit.ItemGroupDetail["ItemGroupLine"]) == 2
        assert Item.get(kit.Id, qb=qb).Name == "Starter Kit"
        assert Item.count("Type = 'Inventory'", qb=qb) == 3
        assert [i.Sku for i in Item.choose(["W-100", "G-300"], field="Sku", qb=qb)] == ["W-100", "G-300"]

        # Paging: start_position / max_results walk the whole list without gaps or repeats.
        pages, start = [], 1
        while True:
            page = Item.all(start_position=start, max_results=2, qb=qb)
            pages.append([item.Id for item in page])
            if len(page) < 2:
                break
            start += 2
        assert [i for page in pages for i in page] == [item.Id for item in items]
        assert all(len(page) <= 2 for page in pages) and len(pages) >= 3
        newest = Invoice.filter(order_by="TxnDate DESC", max_results=2, qb=qb)
        page2 = Invoice.where("", order_by="TxnDate DESC", start_position=3, max_results=2, qb=qb)
        assert newest[0].TxnDate >= newest[1].TxnDate >= page2[0].TxnDate
        assert not {i.Id for i in newest} & {i.Id for i in page2}

        # Customers exist for the demo sales and are queryable.
        customers = Customer.all(qb=qb)
        assert "Cool Cars" in {c.DisplayName for c in customers} and Customer.count(qb=qb) == len(customers)
        cool = Customer.filter(DisplayName="Cool Cars", qb=qb)[0]
        assert Customer.get(cool.Id, qb=qb).DisplayName == "Cool Cars"
        assert Invoice.filter(CustomerRef=cool.Id, qb=qb)

        # Bundles as QuickBooks shows them: group Amount = sum of inner lines, inner Qty unrolled.
        bundled = [inv for inv in Invoice.all(qb=qb) for line in inv.Line if line.DetailType == "GroupLineDetail"]
        assert bundled
        for invoice in bundled:
            for line in invoice.Line:
                if line.DetailType == "GroupLineDetail":
                    inner = line.GroupLineDetail.Line
                    assert Decimal(str(line.Amount)) == sum(Decimal(str(i["Amount"])) for i in inner)

        with pytest.raises(ObjectNotFoundException):
            Invoice.get("999999", qb=qb)
        with pytest.raises(ValidationException):
            Invoice.query("SELECT * FROM Invoice WHERE", qb=qb)

    await run(reads)


# --- writes -------------------------------------------------------------------------------
def _item_line(item_id: str, qty, price) -> SalesItemLine:
    line = SalesItemLine()
    line.Amount = float(Decimal(str(qty)) * Decimal(str(price)))
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = Ref()
    line.SalesItemLineDetail.ItemRef.value = item_id
    line.SalesItemLineDetail.Qty = qty
    line.SalesItemLineDetail.UnitPrice = price
    return line


def _ref(value: str) -> Ref:
    ref = Ref()
    ref.value = value
    return ref


async def test_writes_create_sparse_update_void_delete_with_webhooks(sim, receiver):
    realm = await run(new_company, sim)

    def writes() -> dict:
        _, qb = connect(sim, realm)
        out: dict = {}
        customer = Customer()
        customer.DisplayName = "Zed's Parts"
        customer.GivenName, customer.FamilyName = "Zed", "Parts"
        customer = customer.save(qb=qb)
        assert customer.Id and customer.SyncToken == "0" and customer.Active is True
        dupe = Customer()
        dupe.DisplayName = "zed's parts"
        with pytest.raises(QuickbooksException) as duplicate:
            dupe.save(qb=qb)
        assert duplicate.value.error_code == 6240

        item = Item()
        item.Name, item.Sku, item.Type, item.UnitPrice = "Sprocket", "SP-1", "Inventory", 4.25
        item.QtyOnHand = 50
        item = item.save(qb=qb)
        assert item.Sku == "SP-1" and item.TrackQtyOnHand is True and item.SyncToken == "0"
        item.UnitPrice, item.sparse = 4.5, True
        item = item.save(qb=qb)
        assert item.SyncToken == "1" and Decimal(str(item.UnitPrice)) == Decimal("4.5")
        bundle = Item()
        bundle.Name, bundle.Type = "New Kit", "Group"
        with pytest.raises(QuickbooksException) as group:
            bundle.save(qb=qb)
        assert group.value.error_code == 6000
        kit = Item.filter(Sku="KIT-1", qb=qb)[0]

        # Invoice: an item line, a bundle (python-quickbooks sends Amount 0 and no inner lines),
        # a 10 % discount and shipping, as the sales form lays them out.
        invoice = Invoice()
        invoice.CustomerRef = _ref(customer.Id)
        group_line = GroupLine()
        group_line.GroupLineDetail = GroupLineDetail()
        group_line.GroupLineDetail.GroupItemRef = {"value": kit.Id}
        group_line.GroupLineDetail.Quantity = 2
        discount = DiscountLine()
        discount.DiscountLineDetail = DiscountLineDetail()
        discount.DiscountLineDetail.PercentBased = True
        discount.DiscountLineDetail.DiscountPercent = 10
        shipping = _item_line("SHIPPING_ITEM_ID", 1, 5)
        invoice.Line = [_item_line(item.Id, 10, 4.5), group_line, discount, shipping]
        invoice = invoice.save(qb=qb, request_id="create-invoice-1")
        # KIT-1 = 2 × Widget (12.50) + 1 × Gadget (40.00) = 65.00 per kit → 130.00 for 2.
        # Items 45.00 + 130.00 = 175.00; discount 17.50; shipping 5.00 (never discounted) → 162.50.
        assert Decimal(str(invoice.TotalAmt)) == Decimal("162.50")
        kinds = [line.DetailType for line in invoice.Line]
        assert kinds == [
            "SalesItemLineDetail",
            "GroupLineDetail",
            "DiscountLineDetail",
            "SubTotalLineDetail",
            "SalesItemLineDetail",
        ]
        group_read = invoice.Line[1]
        assert Decimal(str(group_read.Amount)) == Decimal("130.00")
        assert [Decimal(str(i["SalesItemLineDetail"]["Qty"])) for i in group_read.GroupLineDetail.Line] == [4, 2]
        assert invoice.Line[-1].SalesItemLineDetail.ItemRef.value == "SHIPPING_ITEM_ID"
        assert Decimal(str(invoice.Line[-1].Amount)) == 5
        assert invoice.LinkedTxn == [] and invoice.SyncToken == "0"
        # The same requestid again: the first answer, no second invoice.
        retry = Invoice()
        retry.CustomerRef = _ref(customer.Id)
        retry.Line = [_item_line(item.Id, 1, 4.5)]
        assert retry.save(qb=qb, request_id="create-invoice-1").Id == invoice.Id

        # Sparse update of a read invoice: SyncToken and LastUpdatedTime move.
        time.sleep(1.05)  # MetaData times have whole seconds
        current = Invoice.get(invoice.Id, qb=qb)
        current.sparse = True
        current.PrivateNote = "rush"
        current.Line[0].SalesItemLineDetail.Qty = 12
        current.Line[0].Amount = 54.0
        updated = current.save(qb=qb)
        assert updated.SyncToken == "1" and updated.PrivateNote == "rush"
        assert updated.MetaData.LastUpdatedTime > invoice.MetaData.LastUpdatedTime
        assert Decimal(str(updated.TotalAmt)) == Decimal("54.00") + 130 - Decimal("18.40") + 5
        # A write with the old SyncToken is refused (5010 Stale Object).
        with pytest.raises(QuickbooksException) as stale:
            current.save(qb=qb)
        assert stale.value.error_code == 5010

        # Void (Invoice: ?operation=void) keeps the invoice, zeroed.
        updated.void(qb=qb)
        voided = Invoice.get(invoice.Id, qb=qb)
        assert voided.PrivateNote.startswith("Voided") and Decimal(str(voided.TotalAmt)) == 0
        assert voided.SyncToken == "2"

        # SalesReceipt: create, void (?operation=update&include=void), delete.
        receipt = SalesReceipt()
        receipt.CustomerRef = _ref(customer.Id)
        receipt.Line = [_item_line(item.Id, 3, 4.5)]
        receipt = receipt.save(qb=qb)
        assert Decimal(str(receipt.TotalAmt)) == Decimal("13.50") and receipt.Balance == 0
        receipt.void(qb=qb)
        assert Decimal(str(SalesReceipt.get(receipt.Id, qb=qb).TotalAmt)) == 0

        # CreditMemo linked to the invoice: create, full update, delete.
        memo = CreditMemo()
        memo.CustomerRef = _ref(customer.Id)
        memo.Line = [_item_line(item.Id, 2, 4.5)]
        memo.LinkedTxn = [invoice.to_linked_txn()]
        memo = memo.save(qb=qb)
        assert memo.LinkedTxn == [{"TxnId": invoice.Id, "TxnType": "Invoice", "TxnLineId": "1"}]
        memo.Line = [line for line in memo.Line if line.DetailType == "SalesItemLineDetail"]
        memo.Line[0].SalesItemLineDetail.Qty, memo.Line[0].Amount = 1, 4.5
        memo = memo.save(qb=qb)
        assert memo.SyncToken == "1" and Decimal(str(memo.TotalAmt)) == Decimal("4.50")
        deleted = memo.delete(qb=qb)
        assert deleted["CreditMemo"] == {"domain": "QBO", "status": "Deleted", "Id": memo.Id}
        with pytest.raises(ObjectNotFoundException):
            CreditMemo.get(memo.Id, qb=qb)
        # Deleting a deleted transaction: 610.
        with pytest.raises(ObjectNotFoundException):
            memo.delete(qb=qb)

        # Items and customers are not deleted: they are made inactive.
        customer.Active, customer.sparse = False, True
        assert customer.save(qb=qb).Active is False
        assert "Zed's Parts" not in {c.DisplayName for c in Customer.all(qb=qb)}
        assert Customer.filter(Active=False, qb=qb)[0].Id == customer.Id

        out.update(customer=customer.Id, item=item.Id, invoice=invoice.Id, receipt=receipt.Id, memo=memo.Id)
        return out

    ids = await run(writes)
    expected = {
        ("qbo.customer.created.v1", ids["customer"]),
        ("qbo.item.created.v1", ids["item"]),
        ("qbo.item.updated.v1", ids["item"]),
        ("qbo.invoice.created.v1", ids["invoice"]),
        ("qbo.invoice.updated.v1", ids["invoice"]),
        ("qbo.invoice.voided.v1", ids["invoice"]),
        ("qbo.salesreceipt.created.v1", ids["receipt"]),
        ("qbo.salesreceipt.voided.v1", ids["receipt"]),
        ("qbo.creditmemo.created.v1", ids["memo"]),
        ("qbo.creditmemo.updated.v1", ids["memo"]),
        ("qbo.creditmemo.deleted.v1", ids["memo"]),
        ("qbo.customer.updated.v1", ids["customer"]),
    }

    def seen() -> set:
        return {(e["type"], e["intuitentityid"]) for e in receiver.events() if e["intuitaccountid"] == realm}

    await wait_for(lambda: expected <= seen(), timeout=10)
    assert len([e for e in receiver.events() if e["type"] == "qbo.invoice.created.v1"]) == 1  # requestid retry
    qb_verifier = QuickBooks(minorversion=75, verifier_token=VERIFIER)
    for body, headers in receiver.received:
        assert qb_verifier.validate_webhook_signature(body.decode(), headers["intuit-signature"])


# --- CDC -----------------------------------------------------------------------------------
async def test_change_data_capture_and_cdc_faults(sim):
    realm = await run(new_company, sim)

    def cdc() -> None:
        _, qb = connect(sim, realm)
        since = timefmt.response_time(timefmt.now(), timefmt.parse_offset("-07:00"))  # after the demo data
        invoice = Invoice.all(qb=qb)[0]
        invoice.sparse, invoice.PrivateNote = True, "changed"
        invoice.save(qb=qb)
        receipt = SalesReceipt.all(qb=qb)[0]
        receipt.delete(qb=qb)
        customer = Customer()
        customer.DisplayName = "New Customer"
        customer = customer.save(qb=qb)

        changes = change_data_capture([Invoice, SalesReceipt, CreditMemo, Item, Customer], since, qb=qb)
        assert [i.Id for i in changes.Invoice] == [invoice.Id] and changes.Invoice[0].PrivateNote == "changed"
        assert [(r.Id, r.status) for r in changes.SalesReceipt] == [(receipt.Id, "Deleted")]
        assert [c.DisplayName for c in changes.Customer] == ["New Customer"]
        assert not hasattr(changes, "CreditMemo") and not hasattr(changes, "Item")
        with pytest.raises(UnsupportedException):  # beyond 30 days
            change_data_capture([Invoice], (timefmt.now() - timedelta(days=31)).date().isoformat(), qb=qb)

        # The CDC fault option: HTTP 200 whose body is a Fault.
        control(sim, "POST", "/sim/api/config", {"cdc_fault_next": 1})
        with pytest.raises(SevereException):
            change_data_capture([Invoice], since, qb=qb)
        assert change_data_capture([Invoice], since, qb=qb).Invoice[0].Id == invoice.Id  # only the next call
        control(sim, "POST", "/sim/api/config", {"cdc_fault_next": 1, "cdc_fault_in": "response"})
        raw = qb.change_data_capture("Invoice", since)
        assert raw["CDCResponse"][0]["Fault"]["Error"][0]["code"] == "10000"
        assert qb.change_data_capture("Invoice", since)["CDCResponse"][0]["QueryResponse"]

    await run(cdc)


# --- errors are JSON Faults ----------------------------------------------------------------
async def test_every_error_is_a_json_fault(sim):
    realm = await run(new_company, sim)

    def errors() -> None:
        _, qb = connect(sim, realm)
        with pytest.raises(UnsupportedException):
            qb.get(f"{sim}/v3/company/{realm}/estimate/1")
        health = requests.get(f"{sim}/healthz", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        for method, path in (("GET", "/nowhere"), ("DELETE", f"/v3/company/{realm}/invoice/1"), ("PUT", "/healthz")):
            response = requests.request(method, sim + path, timeout=10)
            assert response.status_code in (404, 405)
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.json()["Fault"]["Error"][0]["code"] == "500"
        with pytest.raises(ValidationException) as missing:
            qb.post(f"{sim}/v3/company/{realm}/invoice", json.dumps({"Line": []}))
        assert missing.value.error_code == 2020
        with pytest.raises(ValidationException) as reference:
            invoice = Invoice()
            invoice.CustomerRef = _ref("424242")
            invoice.Line = [_item_line("1", 1, 1)]
            invoice.save(qb=qb)
        assert reference.value.error_code == 2500
        with pytest.raises(ValidationException):
            qb.post(f"{sim}/v3/company/{realm}/invoice", "not json")

    await run(errors)
