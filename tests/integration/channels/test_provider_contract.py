"""The sales-channel provider contract: one suite, parametrized over providers
(docs/channels.md). Every provider plugged into ``services/ingest/channels`` must pass it
end to end: its simulator, the ingest service (webhook, worker, catch-up), the costing
consumer, PostgreSQL and RabbitMQ.

Adding a provider (Xero) = adding one fixture to ``HARNESSES`` below: an async context
factory that starts the provider's simulator, connects one account to the test tenant and
yields an object with these members (``QuickBooksHarness`` is the reference):

* ``name``: the provider's name = the sales' ``source`` (``"quickbooks"``, ``"xero"``);
* ``pool``, ``ingest`` (aiohttp test client of the ingest app), ``tenant_id``, ``headers``
  (the tenant's API key), ``account`` (realm / organisation id);
* the tenant has product ``W-1`` with lots L1 10 @ 2.00 (Jan 1) and L2 10 @ 3.00 (Jan 10),
  and the account an item mapped to it;
* ``await create_sale(qty, price, date="2026-02-01", notify=True) -> (sale_type, external_id)``:
  a sale of W-1 in the provider (``notify=False``: its webhook is never sent);
* ``await edit_sale(external_id, qty, price)``, ``await void_sale(external_id)``: with their webhooks;
* ``await create_deletable_sale(qty, price) -> (sale_type, external_id)`` and
  ``await delete_sale(external_id)``: a sale the provider lets one delete, and its deletion,
  each with its webhook or, where the provider has none, a "Sync now" (Xero deletes no
  approved invoice, only bank transactions: their sales receipts arrive by catch-up);
* ``empty_webhook_answers``: the webhook answers carry no body (Xero's rule);
* ``await duplicate_and_reorder_webhooks()``: every later delivery sent twice, shuffled;
* ``await signed_delivery(entity_id) -> (body, headers)``: a genuine webhook body naming a
  sale of the account, with the headers that authenticate it; ``signature_header``: the
  name of the header carrying the signature; ``sign(body) -> str``: its value for any body;
* ``await expire_access_token()``, ``await token_refreshes() -> int`` (refreshes the
  provider's token endpoint answered);
* ``await throttle_next(n)``: the next ``n`` API calls are answered 429;
  ``await throttled() -> int``: how many 429 our client has met.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.ingest.qbo.signature import sign
from services.ingest.xero import webhooks as xero_webhooks
from tests.conftest import wait_for
from tests.integration.test_qbo_sync import VERIFIER, Qbo
from tests.integration.test_qbo_sync import qbo as qbo_fixture
from tests.integration.test_xero_sync import KEY as XERO_KEY
from tests.integration.test_xero_sync import Xero
from tests.integration.test_xero_sync import xero as xero_fixture

# --- the QuickBooks harness ------------------------------------------------------------------


class QuickBooksHarness:
    name = "quickbooks"
    signature_header = "intuit-signature"
    empty_webhook_answers = False

    def __init__(self, env: Qbo):
        self.env = env
        self.pool, self.ingest, self.tenant_id, self.headers = env.pool, env.ingest, env.tenant_id, env.headers
        self.account = env.realm

    async def create_sale(self, qty, price, date: str = "2026-02-01", notify: bool = True) -> tuple[str, str]:
        return "invoice", await self.env.txn("invoice", [self.env.line("W-1", qty, price)], notify, txn_date=date)

    async def edit_sale(self, external_id: str, qty, price) -> None:
        await self.env.sim_call(
            "POST", f"/sim/{self.account}/invoice/{external_id}", {"lines": [self.env.line("W-1", qty, price)]}
        )

    async def void_sale(self, external_id: str) -> None:
        await self.env.sim_call("POST", f"/sim/{self.account}/invoice/{external_id}/void")

    async def create_deletable_sale(self, qty, price) -> tuple[str, str]:
        return await self.create_sale(qty, price)

    async def delete_sale(self, external_id: str) -> None:
        await self.env.sim_call("DELETE", f"/sim/{self.account}/invoice/{external_id}")

    async def duplicate_and_reorder_webhooks(self) -> None:
        await self.env.sim_call("POST", "/sim/webhooks/config", {"duplicate": 1.0, "reorder": True})

    async def signed_delivery(self, entity_id: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            [
                {
                    "specversion": "1.0",
                    "id": f"contract-{uuid.uuid4()}",
                    "type": "qbo.invoice.updated.v1",
                    "time": "2026-02-01T10:00:00Z",
                    "intuitentityid": entity_id,
                    "intuitaccountid": self.account,
                }
            ]
        ).encode()
        return body, {"Content-Type": "application/cloudevents+json", "intuit-signature": sign(body, VERIFIER)}

    def sign(self, body: bytes) -> str:
        return sign(body, VERIFIER)

    async def expire_access_token(self) -> None:
        await self.env.sim_call("POST", f"/sim/{self.account}/tokens/expire")

    async def token_refreshes(self) -> int:
        return int((await self.env.stats())["token_refreshes"])

    async def throttle_next(self, n: int) -> None:
        await self.env.sim_call("POST", "/sim/api/config", {"fail_next": n, "fail_status": 429})

    async def throttled(self) -> int:
        """429s our client met (its counter: the simulator's stats count only its own throttle)."""
        return int(REGISTRY.get_sample_value("qbo_api_requests_total", {"outcome": "throttled"}) or 0)


@pytest.fixture
def quickbooks_harness(qbo) -> QuickBooksHarness:
    return QuickBooksHarness(qbo)


qbo = qbo_fixture  # the QuickBooks simulator fixture, by the name quickbooks_harness asks for

# --- the Xero harness ---------------------------------------------------------------------------


class XeroHarness:
    name = "xero"
    signature_header = "x-xero-signature"
    empty_webhook_answers = True

    def __init__(self, env: Xero):
        self.env = env
        self.pool, self.ingest, self.tenant_id, self.headers = env.pool, env.ingest, env.tenant_id, env.headers
        self.account = env.org

    async def create_sale(self, qty, price, date: str = "2026-02-01", notify: bool = True) -> tuple[str, str]:
        return "invoice", await self.env.doc("invoices", [self.env.line("W-1", qty, price)], notify, date=date)

    async def edit_sale(self, external_id: str, qty, price) -> None:
        await self.env.sim_call(
            "POST", f"/sim/{self.account}/invoices/{external_id}", {"lines": [self.env.line("W-1", qty, price)]}
        )

    async def void_sale(self, external_id: str) -> None:
        await self.env.sim_call("POST", f"/sim/{self.account}/invoices/{external_id}/void")

    async def create_deletable_sale(self, qty, price) -> tuple[str, str]:
        receipt = await self.env.doc("bank-transactions", [self.env.line("W-1", qty, price)])
        await self.env.sync_now()
        return "sales_receipt", receipt

    async def delete_sale(self, external_id: str) -> None:
        await self.env.sim_call("POST", f"/sim/{self.account}/{self.env.kinds[external_id]}/{external_id}/delete")
        await self.env.sync_now()

    async def duplicate_and_reorder_webhooks(self) -> None:
        await self.env.sim_call("POST", "/sim/webhooks/config", {"duplicate": 1.0, "reorder": True})

    async def signed_delivery(self, entity_id: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            {
                "events": [
                    {
                        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{entity_id}",
                        "resourceId": entity_id,
                        "tenantId": self.account,
                        "tenantType": "ORGANISATION",
                        "eventCategory": "INVOICE",
                        "eventType": "UPDATE",
                        "eventDateUtc": "2026-02-01T10:00:00.000",
                    }
                ],
                "firstEventSequence": 1,
                "lastEventSequence": 1,
                "entropy": f"contract-{uuid.uuid4()}",
            }
        ).encode()
        return body, {"Content-Type": "application/json", "x-xero-signature": self.sign(body)}

    def sign(self, body: bytes) -> str:
        return xero_webhooks.sign(body, XERO_KEY)

    async def expire_access_token(self) -> None:
        await self.env.sim_call("POST", f"/sim/{self.account}/tokens/expire")

    async def token_refreshes(self) -> int:
        return int((await self.env.stats())["token_refreshes"])

    async def throttle_next(self, n: int) -> None:
        await self.env.sim_call("POST", "/sim/api/config", {"fail_next": n, "fail_status": 429})

    async def throttled(self) -> int:
        return int(REGISTRY.get_sample_value("xero_api_requests_total", {"outcome": "throttled"}) or 0)


@pytest.fixture
def xero_harness(xero) -> XeroHarness:
    return XeroHarness(xero)


xero = xero_fixture  # the Xero simulator fixture, by the name xero_harness asks for

#: provider name → the fixture yielding its harness.
HARNESSES = {"quickbooks": "quickbooks_harness", "xero": "xero_harness"}


@pytest.fixture(params=sorted(HARNESSES))
def channel(request) -> Any:
    return request.getfixturevalue(HARNESSES[request.param])


# --- helpers ------------------------------------------------------------------------------------


async def sale(ch, sale_type: str, external_id: str):
    return await ch.pool.fetchrow(
        "SELECT status, revenue, cost, version FROM sales WHERE tenant_id = $1 AND source = $2 AND type = $3 "
        "AND external_id = $4",
        ch.tenant_id,
        ch.name,
        sale_type,
        external_id,
    )


async def expect(ch, sale_type: str, external_id: str, status: str, revenue: str, cost: str, timeout=30) -> None:  # noqa: ASYNC109
    want = (status, Decimal(revenue), Decimal(cost))

    async def reached():
        row = await sale(ch, sale_type, external_id)
        return row is not None and (row["status"], row["revenue"], row["cost"]) == want

    try:
        await wait_for(reached, timeout=timeout)
    except AssertionError:
        row = await sale(ch, sale_type, external_id)
        raise AssertionError(f"{sale_type} {external_id}: want {want}, have {row and dict(row)}") from None


async def upserted_versions(ch) -> list[tuple[str, int]]:
    rows = await ch.pool.fetch(
        "SELECT body FROM event_log WHERE tenant_id = $1 AND source = $2 AND event_type = 'sale.upserted'",
        ch.tenant_id,
        ch.name,
    )
    return [(e["external_id"], e["version"]) for e in (json.loads(bytes(r["body"])) for r in rows)]


async def answer(ch, response) -> dict | None:
    """The webhook's JSON answer; None for a provider whose answers are empty (and checks they are)."""
    if ch.empty_webhook_answers:
        assert await response.read() == b""
        return None
    return await response.json()


# --- the contract ---------------------------------------------------------------------------------


async def test_authenticity_a_missing_or_wrong_signature_is_401_and_nothing_is_stored(channel):
    sale_type, external_id = await channel.create_sale(1, 10, notify=False)
    body, headers = await channel.signed_delivery(external_id)
    count = await channel.pool.fetchval("SELECT count(*) FROM qbo_deliveries WHERE provider = $1", channel.name)
    path = f"/webhooks/{channel.name}"
    forged = {k: v for k, v in headers.items() if k != channel.signature_header}
    for variant in (forged, {**forged, channel.signature_header: "AAAA"}):
        response = await channel.ingest.post(path, data=body, headers=variant)
        assert response.status == 401
        answered = await answer(channel, response)
        assert answered is None or answered["error"] == "bad_signature"
    tampered = await channel.ingest.post(path, data=body + b" ", headers=headers)
    assert tampered.status == 401
    assert await channel.pool.fetchval("SELECT count(*) FROM qbo_deliveries WHERE provider = $1", channel.name) == count
    # The genuine one is accepted, and the sale it names is read.
    response = await channel.ingest.post(path, data=body, headers=headers)
    assert response.status == 200, await response.text()
    await expect(channel, sale_type, external_id, "posted", "10", "2")


async def test_dedupe_the_same_delivery_twice_is_stored_once_and_makes_one_event(channel):
    sale_type, external_id = await channel.create_sale(2, 10, notify=False)
    body, headers = await channel.signed_delivery(external_id)
    answers = []
    for _ in range(3):
        response = await channel.ingest.post(f"/webhooks/{channel.name}", data=body, headers=headers)
        assert response.status == 200
        answers.append(await answer(channel, response))
    assert channel.empty_webhook_answers or [a["new"] for a in answers] == [1, 0, 0]
    assert (
        await channel.pool.fetchval(
            "SELECT count(*) FROM qbo_notifications n JOIN qbo_deliveries d ON d.id = n.delivery_id"
            " WHERE n.provider = $1 AND d.body_sha256 = sha256($2)",
            channel.name,
            body,
        )
        == 1
    )
    await expect(channel, sale_type, external_id, "posted", "20", "4")
    assert (
        await channel.pool.fetchval(
            "SELECT received_count FROM qbo_deliveries WHERE provider = $1 AND body_sha256 = sha256($2)",
            channel.name,
            body,
        )
        == 3
    )
    versions = [v for v in await upserted_versions(channel) if v[0] == external_id]
    assert len(versions) == len(set(versions)) == 1


async def test_ordering_duplicated_and_reordered_webhooks_end_at_the_newest_version(channel):
    await channel.duplicate_and_reorder_webhooks()
    sale_type, first = await channel.create_sale(4, 10)
    _, second = await channel.create_sale(4, 10, date="2026-02-02")
    await channel.edit_sale(first, 6, 10)
    await expect(channel, sale_type, first, "posted", "60", "12")  # 6 from L1
    await expect(channel, sale_type, second, "posted", "40", "8")  # the next 4 of L1
    versions = await upserted_versions(channel)
    assert len(versions) == len(set(versions))  # no version became two events


async def test_edit_void_and_delete(channel):
    sale_type, external_id = await channel.create_sale(3, 10)
    await expect(channel, sale_type, external_id, "posted", "30", "6")
    await channel.edit_sale(external_id, 12, 10)
    await expect(channel, sale_type, external_id, "posted", "120", "26")  # 10 × 2.00 + 2 × 3.00
    await channel.void_sale(external_id)
    await expect(channel, sale_type, external_id, "voided", "0", "0")
    other_type, other = await channel.create_deletable_sale(11, 10)
    await expect(channel, other_type, other, "posted", "110", "23")
    await channel.delete_sale(other)
    await expect(channel, other_type, other, "deleted", "0", "0")
    remaining = await channel.pool.fetch(
        "SELECT lot_number, remaining FROM lots WHERE tenant_id = $1 ORDER BY lot_number", channel.tenant_id
    )
    assert [(r["lot_number"], r["remaining"]) for r in remaining] == [("L1", 10), ("L2", 10)]


async def test_catch_up_heals_a_dropped_webhook(channel):
    sale_type, external_id = await channel.create_sale(2, 10, notify=False)
    response = await channel.ingest.post(
        f"/api/v1/connections/{channel.name}/{channel.account}/sync", headers=channel.headers
    )
    assert response.status == 202
    await expect(channel, sale_type, external_id, "posted", "20", "4")
    listed = await channel.ingest.get("/api/v1/connections", headers=channel.headers)
    mine = [c for c in (await listed.json())["items"] if c["provider"] == channel.name]
    assert [c["realm_id"] for c in mine] == [channel.account]


async def test_token_refresh_race_one_refresh_for_concurrent_callers(channel):
    await channel.expire_access_token()
    before = await channel.token_refreshes()
    sales = [await channel.create_sale(1, 10, date=f"2026-02-0{n}") for n in range(1, 6)]
    for sale_type, external_id in sales:
        await expect(channel, sale_type, external_id, "posted", "10", "2")
    assert await channel.token_refreshes() == before + 1


async def test_rate_limiting_429_is_backed_off_and_retried(channel):
    before = await channel.throttled()
    await channel.throttle_next(2)
    sale_type, external_id = await channel.create_sale(1, 10)
    await expect(channel, sale_type, external_id, "posted", "10", "2", timeout=60)
    assert await channel.throttled() >= before + 2


async def test_bad_input_an_unreadable_signed_body_is_kept_and_answered_200(channel):
    body = b"\xff not json"
    _, headers = await channel.signed_delivery("1")
    headers = {**headers, channel.signature_header: _resign(channel, body)}
    response = await channel.ingest.post(f"/webhooks/{channel.name}", data=body, headers=headers)
    assert response.status == 200
    answered = await answer(channel, response)
    assert answered is None or answered["new"] == 0
    row = await channel.pool.fetchrow(
        "SELECT parse_error FROM qbo_deliveries WHERE provider = $1 AND body_sha256 = sha256($2)", channel.name, body
    )
    assert row is not None and row["parse_error"]


def _resign(channel, body: bytes) -> str:
    return channel.sign(body)
