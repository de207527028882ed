"""QuickBooks Online → costed sales, end to end: the simulator (real API and webhook
formats), the ingest service with its webhook inbox and worker, the costing
consumer, PostgreSQL and RabbitMQ. Expected numbers are worked out in comments.

Lots of W-1: L1 10 @ 2.00 (Jan 1), L2 10 @ 3.00 (Jan 10); WAC = 50 / 20 = 2.50.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest

from services.ingest.admin import connect_quickbooks
from services.ingest.app import create_app
from services.ingest.qbo.signature import sign
from tests.conftest import client_for, settings_for, wait_for
from tools.qbo_sim.app import create_app as create_sim
from tools.qbo_sim.config import SimConfig

VERIFIER = "test-verifier-token"


@dataclass
class Qbo:
    sim: object
    ingest: object
    pool: object
    realm: str
    tenant_id: uuid.UUID
    headers: dict
    items: dict

    async def sim_call(self, method: str, path: str, body=None, status: int | None = None):
        response = await self.sim.request(method, path, json=body)
        assert response.status < 300 if status is None else response.status == status, await response.text()
        return await response.json()

    async def txn(self, entity: str, lines: list, notify: bool = True, **fields) -> str:
        body = {"customer": "Bob", "txn_date": "2026-02-01", "lines": lines, **fields}
        created = await self.sim_call("POST", f"/sim/{self.realm}/{entity}" + ("" if notify else "?notify=false"), body)
        return next(iter(v for k, v in created.items() if k != "time"))["Id"]

    def line(self, sku: str, qty, price) -> dict:
        return {"item_id": self.items[sku], "qty": str(qty), "unit_price": str(price)}

    async def sale(self, sale_type: str, external_id: str):
        return await self.pool.fetchrow(
            "SELECT status, revenue, cost, revenue - cost AS margin, version FROM sales "
            "WHERE tenant_id = $1 AND source = 'quickbooks' AND type = $2 AND external_id = $3",
            self.tenant_id,
            sale_type,
            external_id,
        )

    async def expect(
        self,
        sale_type: str,
        external_id: str,
        status: str,
        revenue: str,
        cost: str,
        timeout: float = 30,  # noqa: ASYNC109 - polling deadline for wait_for; fails with the row it last saw
    ) -> None:
        want = (status, Decimal(revenue), Decimal(cost))

        async def reached():
            row = await self.sale(sale_type, external_id)
            return row is not None and (row["status"], row["revenue"], row["cost"]) == want

        try:
            await wait_for(reached, timeout=timeout)
        except AssertionError:
            row = await self.sale(sale_type, external_id)
            raise AssertionError(f"{sale_type} {external_id}: want {want}, have {row and dict(row)}") from None

    async def remaining(self, lot: str) -> Decimal:
        return await self.pool.fetchval(
            "SELECT remaining FROM lots WHERE tenant_id = $1 AND lot_number = $2", self.tenant_id, lot
        )

    async def stats(self) -> dict:
        return await self.sim_call("GET", f"/sim/{self.realm}/stats")


@pytest.fixture
async def qbo(pool, database_url, broker_prefix, api_tenant, costing_consumer):
    tenant_id, headers = api_tenant
    sim = await client_for(
        create_sim(
            SimConfig(
                verifier_token=VERIFIER,
                webhook_batch_window=0.05,
                webhook_retry_schedule=[0.2, 0.5, 1.0],
                log_level="WARNING",
            )
        )
    )
    sim_url = str(sim.make_url("")).rstrip("/")
    ingest = await client_for(
        create_app(
            settings_for(
                database_url,
                broker_prefix,
                qbo_api_base=sim_url,
                qbo_oauth_token_url=f"{sim_url}/oauth2/v1/tokens/bearer",
                qbo_oauth_revoke_url=f"{sim_url}/v2/oauth2/tokens/revoke",
                qbo_oauth_authorize_url=f"{sim_url}/appcenter/connect/oauth2",
                qbo_client_id="sim-client",
                qbo_client_secret="sim-secret",
                qbo_webhook_verifier_token=VERIFIER,
                qbo_cdc_interval_seconds=3600,
            )
        )
    )
    env = Qbo(sim, ingest, pool, "", tenant_id, headers, {})
    try:
        await env.sim_call("POST", "/sim/webhooks/config", {"url": str(ingest.make_url("/webhooks/quickbooks"))})
        env.realm = (await env.sim_call("POST", "/sim/companies", {}))["realm_id"]
        for name, sku, kind in (
            ("Widget", "W-1", "Inventory"),
            ("Installation", None, "Service"),
            ("Shipping", None, "NonInventory"),
        ):
            item = await env.sim_call("POST", f"/sim/{env.realm}/items", {"name": name, "sku": sku, "type": kind})
            env.items[sku or name] = item["Item"]["Id"]
        kit = await env.sim_call(
            "POST",
            f"/sim/{env.realm}/items",
            {"name": "Kit", "sku": "KIT", "type": "Group", "components": [{"item_id": env.items["W-1"], "qty": "2"}]},
        )
        env.items["KIT"] = kit["Item"]["Id"]
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
            response = await ingest.post(path, json=body, headers=headers)
            assert response.status == 202, await response.text()
        tokens = await env.sim_call("POST", f"/sim/{env.realm}/tokens")
        async with pool.acquire() as conn:
            assert await connect_quickbooks(
                conn,
                settings_for(database_url, broker_prefix),
                tenant_id,
                env.realm,
                tokens["access_token"],
                tokens["refresh_token"],
                tokens["expires_in"],
            )
        await wait_for(
            lambda: pool.fetchval(  # the initial import has run (it finds the items)
                "SELECT cdc_watermark IS NOT NULL FROM qbo_connections WHERE realm_id = $1", env.realm
            )
        )
        yield env
    finally:
        await ingest.close()
        await sim.close()
        # The simulator is gone: its realm must not stay connected, or every later ingest app's
        # catch-up would keep calling it (and logging the failures into other tests' output).
        await pool.execute("UPDATE qbo_connections SET status = 'disconnected' WHERE tenant_id = $1", tenant_id)


async def test_invoice_created_edited_voided_and_deleted(qbo):
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 3, 10)])
    await qbo.expect("invoice", invoice, "posted", "30", "6")  # 3 from L1 at 2.00
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/invoice/{invoice}", {"lines": [qbo.line("W-1", 12, 10)]})
    await qbo.expect("invoice", invoice, "posted", "120", "26")  # 10 × 2.00 + 2 × 3.00
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/invoice/{invoice}", {"lines": [qbo.line("W-1", 4, 10)]})
    await qbo.expect("invoice", invoice, "posted", "40", "8")  # 4 × 2.00
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/invoice/{invoice}/void")
    await qbo.expect("invoice", invoice, "voided", "0", "0")
    assert await qbo.remaining("L1") == 10  # the lot is restored

    other = await qbo.txn("invoice", [qbo.line("W-1", 11, 10)])
    await qbo.expect("invoice", other, "posted", "110", "23")  # 10 × 2.00 + 1 × 3.00
    await qbo.sim_call("DELETE", f"/sim/{qbo.realm}/invoice/{other}")
    await qbo.expect("invoice", other, "deleted", "0", "0")
    assert (await qbo.remaining("L1"), await qbo.remaining("L2")) == (10, 10)


async def test_sales_receipt_and_credit_memo(qbo):
    receipt = await qbo.txn("salesreceipt", [qbo.line("W-1", 5, 10)])
    await qbo.expect("sales_receipt", receipt, "posted", "50", "10")  # 5 × 2.00
    credit = await qbo.txn("creditmemo", [qbo.line("W-1", 2, 10)], txn_date="2026-02-02")
    await qbo.expect("credit_memo", credit, "posted", "-20", "-5")  # 2 returned, valued at WAC 2.50
    later = await qbo.txn("invoice", [qbo.line("W-1", 17, 10)], txn_date="2026-02-03")
    # 5 of L1 left at 2.00 + 10 of L2 at 3.00 + the 2 returned at 2.50 = 10 + 30 + 5
    await qbo.expect("invoice", later, "posted", "170", "45")


async def test_bundle_discount_tax_inclusive_and_foreign_currency(qbo):
    bundle = await qbo.txn(
        "invoice", [{"group_item_id": qbo.items["KIT"], "qty": "1", "lines": [qbo.line("W-1", 2, 10)]}]
    )
    await qbo.expect("invoice", bundle, "posted", "20", "4")  # the kit's 2 widgets from L1
    discounted = await qbo.txn(
        "invoice",
        [qbo.line("W-1", 2, 10), qbo.line("Installation", 1, 30), {"discount_amount": "5"}],
        txn_date="2026-02-02",
    )
    # discount 5 spread over 20 and 30: widget 18, installation 27; cost 2 widgets at 2.00
    await qbo.expect("invoice", discounted, "posted", "45", "4")
    taxed = await qbo.txn(
        "invoice", [qbo.line("W-1", 1, 11)], tax="TaxInclusive", tax_rate="0.1", txn_date="2026-02-03"
    )
    await qbo.expect("invoice", taxed, "posted", "10", "2")  # 11 includes 10 % tax: 10 net
    foreign = await qbo.txn(
        "invoice",
        [qbo.line("W-1", 1, 10), qbo.line("Shipping", 1, 5)],
        currency="EUR",
        exchange_rate="1.2",
        txn_date="2026-02-04",
    )
    await qbo.expect("invoice", foreign, "posted", "18", "2")  # (10 + 5) EUR × 1.2; shipping costs nothing
    lines = await qbo.pool.fetch(
        "SELECT l.kind, l.revenue FROM sale_lines l JOIN sales s ON s.id = l.sale_id WHERE s.tenant_id = $1 "
        "AND s.external_id = $2 AND s.source = 'quickbooks' ORDER BY l.line_no",
        qbo.tenant_id,
        foreign,
    )
    assert [(r["kind"], r["revenue"]) for r in lines] == [("inventory", Decimal("12.0")), ("shipping", Decimal("6.0"))]


async def test_duplicated_and_reordered_webhooks_count_once(qbo):
    await qbo.sim_call("POST", "/sim/webhooks/config", {"duplicate": 1.0, "reorder": True})
    first = await qbo.txn("invoice", [qbo.line("W-1", 4, 10)])
    second = await qbo.txn("invoice", [qbo.line("W-1", 4, 10)], txn_date="2026-02-02")
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/invoice/{first}", {"lines": [qbo.line("W-1", 6, 10)]})
    await qbo.expect("invoice", first, "posted", "60", "12")  # 6 from L1
    await qbo.expect("invoice", second, "posted", "40", "8")  # the next 4 of L1
    rows = await qbo.pool.fetch(
        "SELECT body FROM event_log WHERE tenant_id = $1 AND event_type = 'sale.upserted'", qbo.tenant_id
    )
    versions = [(e["external_id"], e["version"]) for e in (json.loads(bytes(r["body"])) for r in rows)]
    # Each version became at most one event (notifications pending together are read once, as the newest).
    assert len(versions) == len(set(versions)) and 2 <= len(versions) <= 3
    deliveries = await qbo.pool.fetchval(
        "SELECT count(*) FROM qbo_notifications WHERE realm_id = $1 AND entity = 'Invoice'", qbo.realm
    )
    assert deliveries == 3  # three distinct notifications stored, their duplicates absorbed


async def test_a_lost_webhook_is_healed_by_cdc(qbo):
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 2, 10)], notify=False)
    response = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert response.status == 202
    await qbo.expect("invoice", invoice, "posted", "20", "4")


async def test_expired_access_token_is_refreshed_once(qbo):
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/tokens/expire")
    before = (await qbo.stats())["token_refreshes"]
    invoices = [await qbo.txn("invoice", [qbo.line("W-1", 1, 10)], txn_date=f"2026-02-0{n}") for n in range(1, 6)]
    for invoice in invoices:
        await qbo.expect("invoice", invoice, "posted", "10", "2")
    assert (await qbo.stats())["token_refreshes"] == before + 1  # single flight, newest refresh token kept


async def test_throttling_is_survived(qbo):
    await qbo.sim_call("POST", "/sim/api/config", {"max_concurrent": 1, "latency_seconds": 0.2})
    invoices = [await qbo.txn("invoice", [qbo.line("W-1", 1, 10)], txn_date=f"2026-02-0{n}") for n in range(1, 8)]
    for invoice in invoices:
        await qbo.expect("invoice", invoice, "posted", "10", "2", timeout=60)
    assert (await qbo.stats())["throttled"] > 0


async def test_bad_signature_is_rejected_and_nothing_stored(qbo):
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": "x1",
                "type": "qbo.invoice.created.v1",
                "intuitentityid": "1",
                "intuitaccountid": qbo.realm,
            }
        ]
    ).encode()
    count = await qbo.pool.fetchval("SELECT count(*) FROM qbo_deliveries")
    for signature in (None, sign(body, "wrong-token"), sign(body + b" ", VERIFIER)):
        headers = {"Content-Type": "application/cloudevents+json"} | (
            {"intuit-signature": signature} if signature else {}
        )
        response = await qbo.ingest.post("/webhooks/quickbooks", data=body, headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] == "bad_signature"
    assert await qbo.pool.fetchval("SELECT count(*) FROM qbo_deliveries") == count


async def test_unknown_realm_is_stored_and_ignored_and_unparseable_body_kept(qbo):
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": "qbo.invoice.created.v1",
                "intuitentityid": "1",
                "intuitaccountid": "no-such-realm",
            },
        ]
    ).encode()
    response = await qbo.ingest.post(
        "/webhooks/quickbooks", data=body, headers={"intuit-signature": sign(body, VERIFIER)}
    )
    assert response.status == 200
    status = await qbo.pool.fetchval("SELECT status FROM qbo_notifications WHERE realm_id = 'no-such-realm'")
    assert status == "ignored"
    garbage = b'{"not": "a delivery"}'
    response = await qbo.ingest.post(
        "/webhooks/quickbooks", data=garbage, headers={"intuit-signature": sign(garbage, VERIFIER)}
    )
    assert response.status == 200  # an error would make Intuit retry it for hours
    kept = await qbo.pool.fetchval("SELECT parse_error FROM qbo_deliveries WHERE body = $1", garbage)
    assert kept and "neither" in kept


async def test_mapping_added_later_recosts_the_lines(qbo):
    gizmo = (await qbo.sim_call("POST", f"/sim/{qbo.realm}/items", {"name": "Gizmo", "type": "Inventory"}))["Item"]
    invoice = await qbo.txn("invoice", [{"item_id": gizmo["Id"], "qty": "2", "unit_price": "10"}])
    await qbo.expect("invoice", invoice, "posted", "20", "0")  # unmapped: revenue, no cost
    assert (
        await qbo.pool.fetchval(
            "SELECT kind FROM sale_lines l JOIN sales s ON s.id = l.sale_id "
            "WHERE s.external_id = $1 AND s.tenant_id = $2",
            invoice,
            qbo.tenant_id,
        )
        == "unmapped"
    )
    response = await qbo.ingest.put(
        "/api/v1/products/GZ-1",
        headers=qbo.headers,
        json={"name": "Gizmo product", "qbo_item_id": gizmo["Id"], "standard_cost": "4"},
    )
    assert response.status == 202
    await qbo.expect("invoice", invoice, "posted", "20", "8")  # now mapped: 2 short at standard cost 4.00


async def test_a_sale_first_seen_voided_keeps_its_date_and_customer(qbo):
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 2, 10)], notify=False, customer="Cancelled Co")
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/invoice/{invoice}/void?notify=false")
    response = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert response.status == 202
    await qbo.expect("invoice", invoice, "voided", "0", "0")

    async def header():  # the content and the void are two events, applied in either order
        row = await qbo.pool.fetchrow(
            "SELECT txn_date, customer FROM sales WHERE tenant_id = $1 AND external_id = $2 AND source = 'quickbooks'",
            qbo.tenant_id,
            invoice,
        )
        return row if row["txn_date"] is not None else None

    row = await wait_for(header)
    assert (row["txn_date"].isoformat(), row["customer"]) == ("2026-02-01", "Cancelled Co")
    await qbo.expect("invoice", invoice, "voided", "0", "0")  # still voided, whatever the order
    assert await qbo.remaining("L1") == 10  # nothing consumed


async def test_a_delivery_mixing_a_connected_realm_and_an_unknown_one_routes_each_element(qbo):
    """RELIABILITY S9: realms are routed per element; the unknown one is kept and ignored."""
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 1, 10)], notify=False)  # known only from this delivery
    unknown = str(uuid.uuid4())
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": "qbo.invoice.created.v1",
                "intuitentityid": invoice,
                "intuitaccountid": qbo.realm,
            },
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": "qbo.invoice.created.v1",
                "intuitentityid": invoice,
                "intuitaccountid": unknown,
            },
        ]
    ).encode()
    response = await qbo.ingest.post(
        "/webhooks/quickbooks",
        data=body,
        headers={"Content-Type": "application/cloudevents+json", "intuit-signature": sign(body, VERIFIER)},
    )
    assert response.status == 200
    assert (await response.json())["received"] == 2
    await qbo.expect("invoice", invoice, "posted", "10", "2")  # 1 of L1 at 2.00
    assert await qbo.pool.fetchval("SELECT status FROM qbo_notifications WHERE realm_id = $1", unknown) == "ignored"


async def test_a_webhook_body_over_the_limit_is_413_and_nothing_is_stored(qbo):
    body = b"[" + b" " * 1_100_000 + b"]"
    count = await qbo.pool.fetchval("SELECT count(*) FROM qbo_deliveries")
    response = await qbo.ingest.post(
        "/webhooks/quickbooks", data=io.BytesIO(body), headers={"intuit-signature": sign(body, VERIFIER)}
    )
    assert response.status == 413
    assert (await response.json())["error"] == "body_too_large"
    assert await qbo.pool.fetchval("SELECT count(*) FROM qbo_deliveries") == count


async def test_a_signed_body_that_is_not_utf8_is_kept_as_unparseable_and_answered_200(qbo):
    body = b'[{"id": "\xff\xfe"}]'
    response = await qbo.ingest.post(
        "/webhooks/quickbooks", data=body, headers={"intuit-signature": sign(body, VERIFIER)}
    )
    assert response.status == 200  # an error would make Intuit retry it for hours
    assert await qbo.pool.fetchval("SELECT parse_error FROM qbo_deliveries WHERE body = $1", body)


# --- Issue 16 -------------------------------------------------------------------------------


async def _connection(qbo):
    return await qbo.pool.fetchrow("SELECT * FROM qbo_connections WHERE realm_id = $1", qbo.realm)


async def test_issue16_2_a_cdc_fault_answered_200_keeps_the_watermark_is_retried_and_shown(qbo):
    before = await _connection(qbo)
    # Three CDC answers in a row are 200 + Fault: failures at ~0 s, 1 s, 3 s, success at ~7 s (backoff).
    await qbo.sim_call("POST", "/sim/api/config", {"cdc_fault_next": 3, "cdc_fault_in": "envelope"})
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 1, 10)], notify=False)
    response = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert response.status == 202
    failed = await wait_for(
        lambda: qbo.pool.fetchrow(
            "SELECT * FROM qbo_connections WHERE realm_id = $1 AND last_error IS NOT NULL", qbo.realm
        )
    )
    assert failed["cdc_watermark"] == before["cdc_watermark"]  # the faulted window is not skipped
    assert "10000" in failed["last_error"] and failed["last_error_at"] is not None and failed["sync_failures"] >= 1
    listed = await qbo.ingest.get("/api/v1/connections/quickbooks", headers=qbo.headers)
    [item] = (await listed.json())["items"]
    assert item["last_error"] and item["last_error_at"] and "last_synced_at" in item
    # No new sync request and a catch-up interval of an hour: only the backoff retry can heal it.
    await qbo.expect("invoice", invoice, "posted", "10", "2", timeout=30)
    healed = await wait_for(
        lambda: qbo.pool.fetchrow(
            "SELECT * FROM qbo_connections WHERE realm_id = $1 AND last_error IS NULL AND sync_failures = 0", qbo.realm
        )
    )
    assert healed["cdc_watermark"] > before["cdc_watermark"] and healed["last_synced_at"] > failed["last_error_at"]
    assert healed["last_error_at"] == (await _connection(qbo))["last_error_at"] is not None  # kept as history

    # A Fault inside the CDCResponse is a fault too.
    await qbo.sim_call("POST", "/sim/api/config", {"cdc_fault_next": 1, "cdc_fault_in": "response"})
    other = await qbo.txn("invoice", [qbo.line("W-1", 1, 10)], notify=False, txn_date="2026-02-02")
    response = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert response.status == 202
    await wait_for(
        lambda: qbo.pool.fetchval(
            "SELECT last_error_at > $2 FROM qbo_connections WHERE realm_id = $1", qbo.realm, healed["last_error_at"]
        )
    )
    await qbo.expect("invoice", other, "posted", "10", "2", timeout=30)


async def test_issue16_3_an_unreadable_element_does_not_reject_the_rest_of_the_delivery(qbo):
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 1, 10)], notify=False)  # known only from this delivery
    body = json.dumps(
        [
            {"specversion": "1.0", "id": "broken-1", "type": "qbo.invoice"},
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": "qbo.invoice.created.v1",
                "intuitentityid": invoice,
                "intuitaccountid": qbo.realm,
            },
        ]
    ).encode()
    response = await qbo.ingest.post(
        "/webhooks/quickbooks",
        data=body,
        headers={"Content-Type": "application/cloudevents+json", "intuit-signature": sign(body, VERIFIER)},
    )
    assert response.status == 200
    assert await response.json() == {"received": 1, "new": 1, "rejected": 1}
    await qbo.expect("invoice", invoice, "posted", "10", "2")
    kept = json.loads(await qbo.pool.fetchval("SELECT parse_error FROM qbo_deliveries WHERE body = $1", body))
    assert [r["element"] for r in kept] == ["0"] and kept[0]["reason"]


async def test_issue16_5_a_void_notification_voids_even_if_the_read_back_still_has_amounts(qbo):
    invoice = await qbo.txn("invoice", [qbo.line("W-1", 2, 10)])
    await qbo.expect("invoice", invoice, "posted", "20", "4")
    # Intuit says Void; the read-back (not caught up yet) still carries the amounts and the same SyncToken.
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": "qbo.invoice.voided.v1",
                "intuitentityid": invoice,
                "intuitaccountid": qbo.realm,
            }
        ]
    ).encode()
    response = await qbo.ingest.post(
        "/webhooks/quickbooks",
        data=body,
        headers={"Content-Type": "application/cloudevents+json", "intuit-signature": sign(body, VERIFIER)},
    )
    assert response.status == 200
    await qbo.expect("invoice", invoice, "voided", "0", "0", timeout=15)
    assert await qbo.remaining("L1") == 10
    # It stays voided: a later read-back with amounts (a newer SyncToken) does not bring it back.
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/invoice/{invoice}", {"lines": [qbo.line("W-1", 3, 10)]})
    await qbo.expect("invoice", invoice, "voided", "0", "0")


async def test_issue16_7_versions_show_the_sync_token_and_the_remap_counter(qbo, database_url):
    from services.query.app import create_app as create_query

    gizmo = (await qbo.sim_call("POST", f"/sim/{qbo.realm}/items", {"name": "Gizmo", "type": "Inventory"}))["Item"]
    invoice = await qbo.txn("invoice", [{"item_id": gizmo["Id"], "qty": "2", "unit_price": "10"}])
    await qbo.expect("invoice", invoice, "posted", "20", "0")
    await qbo.sim_call(
        "POST",
        f"/sim/{qbo.realm}/invoice/{invoice}",
        {"lines": [{"item_id": gizmo["Id"], "qty": "3", "unit_price": "10"}]},
    )
    await qbo.expect("invoice", invoice, "posted", "30", "0")
    response = await qbo.ingest.put(
        "/api/v1/products/GZ-1",
        headers=qbo.headers,
        json={"name": "Gizmo product", "qbo_item_id": gizmo["Id"], "standard_cost": "4"},
    )
    assert response.status == 202
    await qbo.expect("invoice", invoice, "posted", "30", "12")  # re-mapped: 3 short at 4.00
    sale_id = await qbo.pool.fetchval(
        "SELECT id FROM sales WHERE tenant_id = $1 AND external_id = $2 AND source = 'quickbooks'",
        qbo.tenant_id,
        invoice,
    )
    query = await client_for(create_query(settings_for(database_url, "unused")))
    try:
        response = await query.get(f"/api/v1/sales/{sale_id}", headers=qbo.headers)
        assert response.status == 200, await response.text()
        versions = (await response.json())["versions"]
    finally:
        await query.close()
    assert [(v["version"], v["remap"]) for v in versions] == [(0, 0), (1, 0), (1, 1)]


async def test_a_revoked_grant_marks_the_connection_for_reconnecting(qbo):
    """invalid_grant on refresh: the connection's status is reconnect_required (committed, not
    rolled back with the refusal), its last error says so, and Sync now is refused (409)."""
    await qbo.sim_call("POST", f"/sim/{qbo.realm}/tokens/revoke")
    response = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert response.status == 202, await response.text()
    sync_id = (await response.json())["sync_id"]

    async def failed():
        run = await qbo.ingest.get(f"/api/v1/connections/quickbooks/{qbo.realm}/syncs/{sync_id}", headers=qbo.headers)
        body = await run.json()
        return body if body["status"] == "failed" else None

    run = await wait_for(failed)
    assert run["error"] == "QuickBooks no longer accepts this connection: connect the company again."
    status = await qbo.pool.fetchval("SELECT status FROM qbo_connections WHERE realm_id = $1", qbo.realm)
    assert status == "reconnect_required"
    items = (await (await qbo.ingest.get("/api/v1/connections/quickbooks", headers=qbo.headers)).json())["items"]
    assert (items[0]["state"], items[0]["last_error"]) == ("needs_reconnect", run["error"])
    again = await qbo.ingest.post(f"/api/v1/connections/quickbooks/{qbo.realm}/sync", headers=qbo.headers)
    assert again.status == 409
