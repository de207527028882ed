"""The Sales tab's QuickBooks connections (issue 18), in Chromium, as a bookkeeper uses
them: connect through the simulator's consent page, Sync now and its summary, a revoked
connection that needs reconnecting. Real services throughout: the query app serving the
tab, the ingest app (its connect flow, connections API and worker) on another origin that
allows the tab's (CORS, the connect flow's cookie included), the QuickBooks simulator, the
costing consumer, PostgreSQL and RabbitMQ. Every number is compared with the APIs.

Lots of W-1: L1 10 @ 2.00 (Jan 1), L2 10 @ 3.00 (Jan 10)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.browser.conftest import Console, Tab, axe_violations, free_port
from tests.browser.seed import post
from tests.browser.test_sales_tab import _expected_rows, _rows
from tests.conftest import client_for, event_applied, settings_for, wait_for
from tools.qbo_sim.app import create_app as create_sim
from tools.qbo_sim.config import SimConfig

VERIFIER = "browser-verifier-token"
LOTS = [
    ("POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"}),
    ("POST", "/api/v1/lots", {"sku": "W-1", "lot_number": "L1", "quantity": "10", "unit_cost": "2.00",
                              "received_at": "2026-01-01T08:00:00Z"}),
    ("POST", "/api/v1/lots", {"sku": "W-1", "lot_number": "L2", "quantity": "10", "unit_cost": "3.00",
                              "received_at": "2026-01-10T08:00:00Z"}),
]  # fmt: skip


def days_ago(n: int) -> str:
    return (date.today() - timedelta(days=n)).isoformat()


@dataclass
class Env:
    tab: Tab
    sim: TestClient
    pool: object
    realm: str
    widget: str  # the simulator's item id of W-1

    async def sim_call(self, method: str, path: str, body=None):
        response = await self.sim.request(method, path, json=body)
        assert response.status < 300, await response.text()
        return await response.json()

    async def invoice(self, qty: int, price: str, txn_date: str, customer: str = "Acme Robotics") -> str:
        """An invoice entered in QuickBooks; no webhook (only a sync finds it)."""
        body = {"customer": customer, "txn_date": txn_date, "lines": [self.line(qty, price)]}
        return (await self.sim_call("POST", f"/sim/{self.realm}/invoice?notify=false", body))["Invoice"]["Id"]

    def line(self, qty: int, price: str) -> dict:
        return {"item_id": self.widget, "qty": str(qty), "unit_price": price}

    async def sale(self, external_id: str) -> dict | None:
        """The query API's sale of a QuickBooks invoice (list item), if costed."""
        body = await self.tab.api("/api/v1/sales", external_id=external_id, limit=5)
        items = [i for i in body["items"] if i["source"] == "quickbooks"]
        assert len(items) <= 1, items  # never doubled
        return items[0] if items else None

    async def costed(self, external_id: str, status: str, cost: str) -> dict:
        async def reached():
            item = await self.sale(external_id)
            return item if item and item["status"] == status and Decimal(item["cost"]) == Decimal(cost) else None

        try:
            return await wait_for(reached, timeout=60)
        except AssertionError:
            have = await self.sale(external_id)
            raise AssertionError(f"invoice {external_id}: want {status} {cost}, have {have}") from None

    async def ingest_api(self, path: str):
        response = await self.tab.ingest.get(path, headers=self.tab.headers)
        assert response.status == 200, await response.text()
        return await response.json()

    async def all_sales(self) -> list[dict]:
        return (await self.tab.api("/api/v1/sales", sort="date", order="desc", limit=100))["items"]


@pytest.fixture
async def env(pool, database_url, broker_prefix, api_tenant, costing_consumer):
    tenant_id, headers = api_tenant
    sim = await client_for(create_sim(SimConfig(verifier_token=VERIFIER, webhook_batch_window=0.05,
                                                webhook_retry_schedule=[0.2, 0.5], log_level="WARNING")))  # fmt: skip
    sim_url = str(sim.make_url("")).rstrip("/")
    from services.ingest.app import create_app as ingest_app
    from services.query.app import create_app as query_app

    query_port, ingest_port = free_port(), free_port()
    query_origin, ingest_origin = f"http://127.0.0.1:{query_port}", f"http://127.0.0.1:{ingest_port}"
    ingest_settings = settings_for(
        database_url,
        broker_prefix,
        cors_allowed_origins=query_origin,
        qbo_api_base=sim_url,
        qbo_oauth_token_url=f"{sim_url}/oauth2/v1/tokens/bearer",
        qbo_oauth_revoke_url=f"{sim_url}/v2/oauth2/tokens/revoke",
        qbo_oauth_authorize_url=f"{sim_url}/appcenter/connect/oauth2",
        qbo_client_id="sim-client",
        qbo_client_secret="sim-secret",
        qbo_redirect_uri=f"{ingest_origin}/oauth/quickbooks/callback",
        qbo_webhook_verifier_token=VERIFIER,
        qbo_cdc_interval_seconds=3600,
    )
    ingest = TestClient(TestServer(ingest_app(ingest_settings), host="127.0.0.1", port=ingest_port))
    query = TestClient(
        TestServer(
            query_app(settings_for(database_url, broker_prefix, ingest_public_url=ingest_origin)),
            host="127.0.0.1",
            port=query_port,
        )
    )
    await ingest.start_server()
    await query.start_server()
    try:
        tab = Tab(query, ingest, headers)
        event_ids = []
        for method, path, body in LOTS:
            event_ids += await post(ingest, headers, method, path, body)
        for event_id in event_ids:
            await wait_for(lambda event_id=event_id: event_applied(pool, event_id), timeout=60)
        env = Env(tab, sim, pool, "", "")
        await env.sim_call("POST", "/sim/webhooks/config", {"url": str(ingest.make_url("/webhooks/quickbooks"))})
        env.realm = (await env.sim_call("POST", "/sim/companies", {}))["realm_id"]
        item = await env.sim_call("POST", f"/sim/{env.realm}/items", {"name": "Widget", "sku": "W-1"})
        env.widget = item["Item"]["Id"]
        yield env
    finally:
        await query.close()
        await ingest.close()
        await sim.close()
        # The simulator is gone: its realm must not stay connected (later ingest apps would call it).
        await pool.execute("UPDATE qbo_connections SET status = 'disconnected' WHERE tenant_id = $1", tenant_id)


async def _open(browser, env: Env, path: str = "?view=connections"):
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    key = env.tab.headers["Authorization"].split(" ", 1)[1]
    await context.add_init_script(f"sessionStorage.setItem('partsemble.apiKey', {key!r})")
    page = await context.new_page()
    console = Console(page)
    await page.goto(env.tab.url + path)
    return context, page, console


def _card(env: Env, state: str | None = None) -> str:
    return f"#connections li.connection[data-realm='{env.realm}']" + (f"[data-state='{state}']" if state else "")


async def _consent(page, env: Env) -> str:
    """On the simulator's consent page: pick the company, Connect; returns the text of the
    ingest callback's page the browser lands on."""
    await page.wait_for_url(re.compile(r"/appcenter/connect/oauth2\?"))
    assert "wants to connect" in await page.text_content("h1")
    await page.select_option("#realm", env.realm)
    async with page.expect_navigation(url=re.compile(r"/oauth/quickbooks/callback\?")):
        await page.click("#approve")
    assert await page.text_content("h1") == "QuickBooks connected", await page.content()
    return await page.text_content("p")


async def _back_to_the_tab(page, env: Env) -> None:
    await page.goto(env.tab.url + "?view=connections")
    await page.wait_for_selector(_card(env, "active"), timeout=60_000)  # the first import is done


async def _connect(page, env: Env, since: str) -> str:
    """Connections: the date of the first import, Connect QuickBooks, the consent, back."""
    await page.wait_for_selector("#connections:not([aria-busy])", state="attached")
    await page.fill("#connect-since", since)
    async with page.expect_response(lambda r: "/oauth/quickbooks/connect" in r.url and r.request.method == "GET") as r:
        await page.click("#connect")
    assert (await r.value).status == 200
    text = await _consent(page, env)
    await _back_to_the_tab(page, env)
    return text


async def _sync_now(page, env: Env) -> dict:
    """Click Sync now; wait for its summary; returns the API's run it shows."""
    async with page.expect_response(lambda r: r.url.endswith("/sync") and r.request.method == "POST") as r:
        await page.click(f"{_card(env)} button.sync")
    started = await (await r.value).json()
    await page.wait_for_selector(f"{_card(env)} .sync-summary[data-status]", timeout=60_000)
    return await env.ingest_api(f"/api/v1/connections/quickbooks/{env.realm}/syncs/{started['sync_id']}")


async def _assert_list_is_the_apis(page, env: Env) -> list[dict]:
    await page.click("#tab-sales")
    await page.wait_for_selector("#sales-table:not([aria-busy]) #sales-rows tr")
    body = await env.tab.api("/api/v1/sales", sort="date", order="desc", limit=25)
    assert await _rows(page) == _expected_rows(env.tab, body["items"])
    return body["items"]


async def test_connect_through_the_consent_page_and_see_the_sales_costed(env, browser):
    first = await env.invoice(3, "10.00", days_ago(3))  # 3 from L1 at 2.00 = 6.00
    second = await env.invoice(9, "10.00", days_ago(2), customer="Bolt & Nut Co")  # 7 × 2.00 + 2 × 3.00 = 20.00
    context, page, console = await _open(browser, env)
    try:
        await page.wait_for_selector("#connections-empty:not([hidden])")  # nothing connected yet
        since = days_ago(7)
        assert await page.get_attribute("#connect-since", "min") == days_ago(30)
        text = await _connect(page, env, since)
        assert f"since {since}" in text  # the date chosen, not the default 30 days

        card = _card(env, "active")
        assert await page.text_content(f"{card} .badge") == "Connected"
        assert await page.text_content(f"{card} [data-col='last_error']") == "none"
        assert await page.text_content(f"{card} [data-col='last_synced_at']") != "not yet"
        [connection] = (await env.ingest_api("/api/v1/connections/quickbooks"))["items"]
        assert (connection["realm_id"], connection["state"]) == (env.realm, "active")
        # The first import started at the date asked for (the watermark is past it now).
        assert connection["cdc_watermark"] >= since

        await env.costed(first, "posted", "6.00")
        await env.costed(second, "posted", "20.00")
        items = await _assert_list_is_the_apis(page, env)
        assert {(i["external_id"], i["source"], i["cost"]) for i in items} == {
            (first, "quickbooks", "6.00"),
            (second, "quickbooks", "20.00"),
        }
        assert await axe_violations(page) == []
        assert console.errors == []
    finally:
        await context.close()


async def test_sync_now_shows_what_it_did_with_links_to_the_sales(env, browser):
    edited = await env.invoice(2, "10.00", days_ago(5))
    voided = await env.invoice(1, "10.00", days_ago(4))
    deleted = await env.invoice(1, "10.00", days_ago(4))
    untouched = await env.invoice(1, "10.00", days_ago(3))
    context, page, console = await _open(browser, env)
    try:
        await _connect(page, env, days_ago(10))
        await env.costed(edited, "posted", "4.00")  # 2 from L1 at 2.00
        for invoice in (voided, deleted, untouched):
            await env.costed(invoice, "posted", "2.00")

        # In QuickBooks, without webhooks (only a sync finds them): one new, one edited, one
        # voided, one deleted.
        created = await env.invoice(4, "12.50", days_ago(1), customer="Cogsworth Ltd")
        await env.sim_call("POST", f"/sim/{env.realm}/invoice/{edited}?notify=false", {"lines": [env.line(5, "10.00")]})
        await env.sim_call("POST", f"/sim/{env.realm}/invoice/{voided}/void?notify=false")
        await env.sim_call("DELETE", f"/sim/{env.realm}/invoice/{deleted}?notify=false")

        run = await _sync_now(page, env)
        summary = f"{_card(env)} .sync-summary"
        assert run["status"] == "done" and run["error"] is None
        assert await page.get_attribute(summary, "data-status") == "done"
        assert await page.text_content(f"{summary} p") == "Sync finished."
        wanted = {"created": [created], "updated": [edited], "voided": [voided], "deleted": [deleted]}
        assert {group: [ref["qbo_id"] for ref in run[group]] for group in wanted} == wanted
        for group in wanted:
            shown = await page.eval_on_selector_all(
                f"{summary} [data-group='{group}'] dd > :not(.count)",
                "ns => ns.map(n => [n.tagName, n.dataset.qbo, n.getAttribute('href'), n.textContent])",
            )
            # Each sale links to its detail by the query API's id, named as QuickBooks names it.
            assert shown == [["A", r["qbo_id"], f"?sale={r['id']}", f"Invoice {r['qbo_id']}"] for r in run[group]]
            for ref in run[group]:
                assert ref["id"] == (await env.sale(ref["qbo_id"]))["id"]
            assert await page.text_content(f"{summary} [data-group='{group}'] .count") == str(len(run[group]))
        for group in ("skipped", "failed"):
            assert await page.text_content(f"{summary} [data-group='{group}'] .count") == str(run[group])
        assert run["failed"] == 0

        # The new sale's detail: 4 from L1 at 2.00 (3 of L1 are on the edited and untouched ones;
        # the voided and deleted gave theirs back).
        [ref] = run["created"]
        await page.click(f"{summary} [data-group='created'] a")
        await page.wait_for_selector(f"#detail[data-sale-id='{ref['id']}']:not([aria-busy])")
        assert parse_qs(urlsplit(page.url).query)["sale"] == [str(ref["id"])]
        detail = await env.tab.api(f"/api/v1/sales/{ref['id']}")
        assert (detail["external_id"], detail["revenue"]) == (created, "50.00")
        assert await page.text_content("#detail-facts [data-col='cost']") == env.tab.money(detail["cost"])
        assert await page.text_content("#detail-facts [data-col='external_id']") == created
        assert detail["notes"] is None and await page.locator("#detail-facts [data-col='notes']").count() == 0
        await env.costed(edited, "posted", "10.00")
        await env.costed(voided, "voided", "0")
        await env.costed(deleted, "deleted", "0")
        await _assert_list_is_the_apis(page, env)
        assert console.errors == []
    finally:
        await context.close()


async def test_a_revoked_connection_needs_reconnecting_and_reconnecting_loses_nothing(env, browser):
    before_revoke = await env.invoice(3, "10.00", days_ago(3))
    context, page, console = await _open(browser, env)
    try:
        await _connect(page, env, days_ago(7))
        await env.costed(before_revoke, "posted", "6.00")

        # The company's owner disconnects Partsemble in QuickBooks; a sale is entered meanwhile.
        assert (await env.sim_call("POST", f"/sim/{env.realm}/tokens/revoke"))["revoked"] >= 1
        while_revoked = await env.invoice(2, "10.00", days_ago(1))
        run = await _sync_now(page, env)
        assert run["status"] == "failed"
        summary = f"{_card(env)} .sync-summary"
        said = await page.text_content(f"{summary} p.error")
        assert said == f"The sync failed: {run['error']}" and "QuickBooks no longer accepts" in said

        card = _card(env, "needs_reconnect")
        await page.wait_for_selector(card)
        assert await page.text_content(f"{card} .badge") == "Needs reconnecting"
        [connection] = (await env.ingest_api("/api/v1/connections/quickbooks"))["items"]
        assert connection["state"] == "needs_reconnect"
        error = await page.text_content(f"{card} [data-col='last_error']")
        assert error == connection["last_error"]
        assert error == "QuickBooks no longer accepts this connection: connect the company again."
        assert not re.search(r"ReconnectRequired|invalid_grant|Error", error)
        assert await page.locator(f"{card} button.sync").count() == 0
        before = await env.all_sales()

        # Reconnect: the consent again, carrying on from where the connection left off.
        async with page.expect_request(lambda r: "/oauth/quickbooks/connect" in r.url) as r:
            await page.click(f"{card} button.reconnect")
        assert "since=" not in (await r.value).url
        text = await _consent(page, env)
        assert "since the last sync" in text
        await _back_to_the_tab(page, env)
        active = _card(env, "active")
        await page.wait_for_selector(f"{active} [data-col='last_error']:text-is('none')", timeout=30_000)

        # Nothing lost (the sale entered meanwhile arrives), nothing doubled.
        await env.costed(while_revoked, "posted", "4.00")  # 2 from L1 at 2.00
        after = await env.all_sales()
        assert [i for i in after if i["external_id"] != while_revoked] == before
        assert sorted(i["external_id"] for i in after) == sorted([before_revoke, while_revoked])
        assert await env.pool.fetchval("SELECT count(*) FROM qbo_connections WHERE realm_id = $1", env.realm) == 1
        # A sync now reads nothing new and changes nothing.
        run = await _sync_now(page, env)
        assert run["status"] == "done" and not any(run[g] for g in ("created", "updated", "voided", "deleted"))
        assert await env.all_sales() == after
        await _assert_list_is_the_apis(page, env)
        assert console.errors == []
    finally:
        await context.close()
