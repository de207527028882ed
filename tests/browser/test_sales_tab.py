"""The Sales tab (GET /sales of the query service) in a real browser: Debian's
chromium driven by Playwright, against the query app on a loopback port, with data
written through the real pipeline (ingest API → outbox → RabbitMQ → costing).

Every number the page shows is compared with the API's own JSON for the same
request. The list with a sale's detail open is saved to docs/sales-tab.png."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import client_for, event_applied, settings_for, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "sales-tab.png"
DASH = "—"
NASTY_CUSTOMER = "<b>Dyna</b> & Sons"


# --- the browser ---------------------------------------------------------------------------


def _require_chromium() -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium", pytrace=False)


@pytest.fixture
async def browser():
    _require_chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright: pip install -r requirements.txt (playwright)", pytrace=False)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


# --- the data, through the real pipeline ---------------------------------------------------


async def _post(client, headers, method: str, path: str, body=None) -> list[str]:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status == 202, await response.text()
    return (await response.json())["event_ids"]


def _sale(
    reference: str,
    date: str,
    customer: str,
    lines: list[tuple[str, str, str]],
    type_: str = "invoice",
    shipping: str | None = None,
) -> dict:
    body_lines = [{"sku": sku, "quantity": qty, "unit_price": price} for sku, qty, price in lines]
    if shipping is not None:
        body_lines.append({"description": "Shipping", "quantity": "1", "unit_price": shipping})
    return {"reference": reference, "type": type_, "date": date, "customer": customer, "lines": body_lines}


async def _seed(pool, ingest, headers) -> None:
    """Two products, three lots, twelve sales (two short, one voided, a credit memo),
    an edited sale and a lot cost correction (cost revisions)."""
    writes = [
        ("POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"}),
        ("POST", "/api/v1/products", {"sku": "G-2", "name": "Gear housing"}),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "W-1",
                "lot_number": "L1",
                "quantity": "20",
                "unit_cost": "2.25",
                "received_at": "2026-01-05T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "W-1",
                "lot_number": "L2",
                "quantity": "10",
                "unit_cost": "3.10",
                "received_at": "2026-01-20T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "G-2",
                "lot_number": "G1",
                "quantity": "8",
                "unit_cost": "11.40",
                "received_at": "2026-01-10T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/sales",
            _sale("INV-1001", "2026-02-02", "Acme Robotics", [("W-1", "6", "5.00")], shipping="7.50"),
        ),
        ("POST", "/api/v1/sales", _sale("INV-1002", "2026-02-03", "Bolt & Nut Co", [("W-1", "4", "5.25")])),
        ("POST", "/api/v1/sales", _sale("INV-1003", "2026-02-04", "Cogsworth Ltd", [("G-2", "2", "18.50")])),
        ("POST", "/api/v1/sales", _sale("INV-1004", "2026-02-05", "Acme Robotics", [("W-1", "8", "4.80")])),
        (
            "POST",
            "/api/v1/sales",
            _sale("SR-1005", "2026-02-06", NASTY_CUSTOMER, [("W-1", "5", "5.10")], type_="sales_receipt"),
        ),
        ("POST", "/api/v1/sales", _sale("INV-1006", "2026-02-07", "Bolt & Nut Co", [("G-2", "3", "21.00")])),
        ("POST", "/api/v1/sales", _sale("INV-1007", "2026-02-09", "Acme Robotics", [("W-1", "2", "5.00")])),
        (
            "POST",
            "/api/v1/sales",
            _sale("CM-1008", "2026-02-10", "Cogsworth Ltd", [("W-1", "1", "5.00")], type_="credit_memo"),
        ),
        ("POST", "/api/v1/sales", _sale("INV-1009", "2026-02-11", "Acme Robotics", [("G-2", "1", "24.00")])),
        ("POST", "/api/v1/sales", _sale("INV-1010", "2026-02-12", "Dyna Parts", [("W-1", "4", "5.40")])),
        (
            "POST",
            "/api/v1/sales",
            _sale("INV-1011", "2026-02-14", "Bolt & Nut Co", [("W-1", "9", "5.00")], shipping="12.00"),
        ),  # short
        ("POST", "/api/v1/sales", _sale("INV-1012", "2026-02-16", "Cogsworth Ltd", [("G-2", "3", "20.00")])),  # short
        # history: an edit (a second version), a void, and a lot cost correction
        (
            "PUT",
            "/api/v1/sales/INV-1002",
            _sale("INV-1002", "2026-02-03", "Bolt & Nut Co", [("W-1", "4", "5.25"), ("G-2", "1", "19.99")]),
        ),
        ("POST", "/api/v1/sales/INV-1007/void", None),
        ("PATCH", "/api/v1/lots/W-1/L1", {"unit_cost": "2.40"}),
    ]
    event_ids = []
    for method, path, body in writes:
        event_ids += await _post(ingest, headers, method, path, body)
    for event_id in event_ids:
        await wait_for(lambda event_id=event_id: event_applied(pool, event_id), timeout=60)


# --- the query app -------------------------------------------------------------------------


def _query_app(database_url: str, broker_prefix: str):
    from services.query.app import create_app
    from services.query.sales_tab import add_sales_tab

    app = create_app(settings_for(database_url, broker_prefix))
    if not any(getattr(r, "canonical", None) == "/sales" for r in app.router.resources()):
        add_sales_tab(app)  # until create_app registers the tab itself
    return app


async def _api(client, headers, path: str, **params):
    response = await client.get(path, params={k: str(v) for k, v in params.items() if v is not None}, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


# --- reading the page ----------------------------------------------------------------------

READ_ROWS = """rows => rows.map(r => {
  const text = col => r.querySelector(`[data-col="${col}"]`).textContent;
  return {id: r.dataset.id, date: text("date"), customer: text("customer"), revenue: text("revenue"),
          cost: text("cost"), margin: text("margin"), margin_pct: text("margin_pct"),
          status: r.querySelector('[data-col="status"] .badge').textContent,
          shortage: r.classList.contains("shortage") &&
                    r.querySelector('[data-col="status"] .badge-shortage') !== null};
})"""


def _expected_rows(items: list[dict]) -> list[dict]:
    return [
        {
            "id": str(i["id"]),
            "date": i["date"] or DASH,
            "customer": i["customer"] or DASH,
            "revenue": i["revenue"],
            "cost": i["cost"],
            "margin": i["margin"],
            "margin_pct": i["margin_pct"] or DASH,
            "status": i["status"],
            "shortage": i["shortage"],
        }
        for i in items
    ]


async def _rows(page) -> list[dict]:
    return await page.eval_on_selector_all("#sales-rows tr", READ_ROWS)


async def _totals(page) -> dict:
    return await page.eval_on_selector_all(
        "#totals [data-total]", "nodes => Object.fromEntries(nodes.map(n => [n.dataset.total, n.textContent]))"
    )


async def _reload_list(page, action) -> dict:
    """Run ``action`` (a click, a fill…), wait for the list request it causes and for the
    page to render the answer; returns the request's query parameters."""
    async with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/sales") as answer:
        await action()
    response = await answer.value
    assert response.status == 200, await response.text()
    await page.wait_for_selector("#sales-table:not([aria-busy])", state="attached")
    return {k: v[0] for k, v in parse_qs(urlsplit(response.url).query).items()}


async def _assert_list_matches(page, client, headers, **params) -> dict:
    body = await _api(client, headers, "/api/v1/sales", **params)
    assert await _rows(page) == _expected_rows(body["items"])
    summary = body["summary"]
    assert await _totals(page) == {
        "count": str(summary["count"]),
        "revenue": summary["revenue"],
        "cost": summary["cost"],
        "margin": summary["margin"],
    }
    assert await page.is_disabled("#next") == (body["next_cursor"] is None)
    return body


# --- the test ------------------------------------------------------------------------------


async def test_sales_page_is_served_without_a_key_with_its_assets(pool, database_url, broker_prefix):
    client = await client_for(_query_app(database_url, broker_prefix))
    try:
        page = await client.get("/sales")
        assert page.status == 200
        assert page.content_type == "text/html"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        html = await page.text()
        assert 'src="sales/static/sales.js"' in html and 'href="sales/static/sales.css"' in html
        script = await client.get("/sales/static/sales.js")
        assert script.status == 200 and script.content_type in ("text/javascript", "application/javascript")
        source = await script.text()
        assert not any(sink in source for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"))
        style = await client.get("/sales/static/sales.css")
        assert style.status == 200 and style.content_type == "text/css"
        assert (await client.get("/api/v1/sales")).status == 401  # the data still needs the key
    finally:
        await client.close()


async def test_sales_tab_in_a_browser(pool, ingest, api_tenant, costing_consumer, database_url, broker_prefix, browser):
    _tenant_id, headers = api_tenant
    key = headers["Authorization"].split(" ", 1)[1]
    await _seed(pool, ingest, headers)

    client = await client_for(_query_app(database_url, broker_prefix))
    context = await browser.new_context(viewport={"width": 1680, "height": 900})
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        api_calls: list[tuple[str, str | None]] = []
        page.on(
            "request", lambda r: api_calls.append((r.url, r.headers.get("authorization"))) if "/api/" in r.url else None
        )

        # The key is asked for; a wrong one is refused (401) and asked for again.
        await page.goto(str(client.make_url("/sales")))
        await page.wait_for_selector("#key-dialog[open]")
        await page.fill("#key-input", "not-a-key")
        await page.click("#key-submit")
        await page.wait_for_selector("#key-error:not([hidden])")
        assert "not accepted" in await page.text_content("#key-error")
        await _reload_list(page, lambda: _enter_key(page, key))
        assert not await page.is_visible("#key-dialog")
        assert await page.evaluate("sessionStorage.getItem('partsemble.apiKey')") == key

        # The list and its totals are the API's, rows as given, shortage rows marked.
        body = await _assert_list_matches(page, client, headers, sort="date", order="desc", limit=25)
        assert body["summary"]["count"] == 12 and len(body["items"]) == 12
        assert {i["status"] for i in body["items"]} == {"posted", "voided"}
        assert sum(i["shortage"] for i in body["items"]) == 2
        assert "Credit memo" in await page.text_content("#sales-rows")
        # Text goes in as text: the customer's markup is shown, not interpreted.
        assert await page.locator("#sales-rows td[data-col='customer']", has_text="<b>Dyna</b>").count() == 1
        assert await page.locator("#sales-rows b, #sales-rows img").count() == 0
        # Money is right-aligned.
        align = await page.eval_on_selector("#sales-rows td[data-col='revenue']", "n => getComputedStyle(n).textAlign")
        assert align == "right"

        # Filter: customer substring.
        await page.fill("#filters input[name='customer']", "acme")
        query = await _reload_list(page, lambda: page.click("#apply"))
        assert query["customer"] == "acme"
        body = await _assert_list_matches(page, client, headers, customer="acme", sort="date", order="desc", limit=25)
        assert body["summary"]["count"] == 4
        await _reload_list(page, lambda: page.click("#reset"))
        await _assert_list_matches(page, client, headers, sort="date", order="desc", limit=25)

        # Sort by margin: first click descending, the second ascending.
        query = await _reload_list(page, lambda: page.click("th[data-sort='margin'] button"))
        assert (query["sort"], query["order"]) == ("margin", "desc")
        await _assert_list_matches(page, client, headers, sort="margin", order="desc", limit=25)
        assert await page.get_attribute("th[data-sort='margin']", "aria-sort") == "descending"
        query = await _reload_list(page, lambda: page.click("th[data-sort='margin'] button"))
        assert (query["sort"], query["order"]) == ("margin", "asc")
        await _assert_list_matches(page, client, headers, sort="margin", order="asc", limit=25)
        assert await page.get_attribute("th[data-sort='margin']", "aria-sort") == "ascending"

        # Paging by the API's cursors, 5 rows a page: forward to the end and back.
        await _reload_list(page, lambda: page.select_option("#page-size", "5"))
        pages = []
        cursor = None
        while True:
            api_page = await _api(client, headers, "/api/v1/sales", sort="margin", order="asc", limit=5, cursor=cursor)
            pages.append(api_page)
            cursor = api_page["next_cursor"]
            if cursor is None:
                break
        assert [len(p["items"]) for p in pages] == [5, 5, 2]
        assert await _rows(page) == _expected_rows(pages[0]["items"])
        assert await page.is_disabled("#prev")
        for number in (2, 3):
            query = await _reload_list(page, lambda: page.click("#next"))
            assert query["cursor"] == pages[number - 2]["next_cursor"]
            assert await _rows(page) == _expected_rows(pages[number - 1]["items"])
            assert await page.text_content("#page-info") == f"Page {number} of 3"
        assert await page.is_disabled("#next")
        for number in (2, 1):
            await _reload_list(page, lambda: page.click("#prev"))
            assert await _rows(page) == _expected_rows(pages[number - 1]["items"])
        assert await page.is_disabled("#prev")
        summary = pages[0]["summary"]
        assert await _totals(page) == {"count": "12", **{k: summary[k] for k in ("revenue", "cost", "margin")}}

        # Back to all rows by date, then the detail of a sale that drew on two lots.
        await _reload_list(page, lambda: page.select_option("#page-size", "25"))
        await _reload_list(page, lambda: page.click("th[data-sort='date'] button"))
        body = await _assert_list_matches(page, client, headers, sort="date", order="desc", limit=25)
        [receipt] = [i for i in body["items"] if i["external_id"] == "SR-1005"]
        detail = await _api(client, headers, f"/api/v1/sales/{receipt['id']}")
        async with page.expect_response(lambda r: urlsplit(r.url).path == f"/api/v1/sales/{receipt['id']}"):
            await page.click(f"#sales-rows tr[data-id='{receipt['id']}']")
        await page.wait_for_selector(f"#detail[data-sale-id='{receipt['id']}']:not([aria-busy])")
        await _assert_detail_matches(page, detail)
        assert len({a["lot_number"] for line in detail["lines"] for a in line["allocations"]}) == 2
        assert detail["cost_revisions"], "the L1 cost correction revised this sale's cost"
        assert await page.get_attribute(f"#sales-rows tr[data-id='{receipt['id']}']", "aria-selected") == "true"

        # The screenshot for the README: the list with a short sale's detail open.
        [short] = [i for i in body["items"] if i["external_id"] == "INV-1011"]
        short_detail = await _api(client, headers, f"/api/v1/sales/{short['id']}")
        async with page.expect_response(lambda r: urlsplit(r.url).path == f"/api/v1/sales/{short['id']}"):
            await page.click(f"#sales-rows tr[data-id='{short['id']}']")
        await page.wait_for_selector(f"#detail[data-sale-id='{short['id']}']:not([aria-busy])")
        await _assert_detail_matches(page, short_detail)
        assert await page.locator("#detail-lines tr.line.shortage .badge-shortage").count() == 1
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Product margins: a bar per product, values as the API gives them.
        async with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/products/margins"):
            await page.click("#tab-margins")
        await page.wait_for_selector("#margin-chart:not([aria-busy]) svg g.bar")
        margins = await _api(client, headers, "/api/v1/products/margins")
        items = margins["items"] if isinstance(margins, dict) else margins
        assert sorted(i["sku"] for i in items) == ["G-2", "W-1"]
        bars = await page.eval_on_selector_all(
            "#margin-chart svg g.bar",
            "gs => gs.map(g => ({sku: g.dataset.sku, value: g.querySelector('text.value').textContent,"
            " width: Number(g.querySelector('rect').getAttribute('width'))}))",
        )
        assert [(b["sku"], b["value"]) for b in bars] == [(i["sku"], i["margin"]) for i in items]
        assert all(b["width"] > 0 for b in bars)
        table = await page.eval_on_selector_all(
            "#margins-table tbody tr",
            "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.col, c.textContent])))",
        )
        assert table == [
            {
                "sku": i["sku"],
                "name": i["name"] or DASH,
                "quantity_sold": i["quantity_sold"],
                "quantity_returned": i["quantity_returned"],
                "revenue": i["revenue"],
                "cost": i["cost"],
                "margin": i["margin"],
                "margin_pct": i["margin_pct"] or DASH,
                "shortage_quantity": i["shortage_quantity"],
            }
            for i in items
        ]

        # Every API call but the refused one carried the key; the page raised no error.
        assert {auth for _, auth in api_calls} == {"Bearer not-a-key", f"Bearer {key}"}
        assert [auth for _, auth in api_calls].count("Bearer not-a-key") == 1
        assert errors == []
    finally:
        await context.close()
        await client.close()


async def _enter_key(page, key: str) -> None:
    await page.wait_for_selector("#key-dialog[open]")
    await page.fill("#key-input", key)
    await page.click("#key-submit")


async def _assert_detail_matches(page, detail: dict) -> None:
    facts = await page.eval_on_selector_all(
        "#detail-facts dd[data-col]", "nodes => Object.fromEntries(nodes.map(n => [n.dataset.col, n.textContent]))"
    )
    assert {k: facts[k] for k in ("revenue", "cost", "margin")} == {k: detail[k] for k in ("revenue", "cost", "margin")}
    assert facts["date"] == detail["date"] and facts["external_id"] == detail["external_id"]
    for line in detail["lines"]:
        row = page.locator(f"#detail-lines tr.line[data-line='{line['line_no']}']")
        shown = await row.evaluate("r => Object.fromEntries([...r.cells].map(c => [c.dataset.col, c.textContent]))")
        assert {k: shown[k] for k in ("quantity", "revenue", "cost", "margin", "margin_pct")} == {
            "quantity": line["quantity"],
            "revenue": line["revenue"],
            "cost": line["cost"],
            "margin": line["margin"],
            "margin_pct": line["margin_pct"] or DASH,
        }
        allocations = await page.eval_on_selector_all(
            f"#detail-lines tr.allocs[data-line='{line['line_no']}'] tr.alloc",
            "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.col, c.textContent])))",
        )
        assert [{k: a[k] for k in ("lot_number", "quantity", "unit_cost", "cost")} for a in allocations] == [
            {k: a[k] for k in ("lot_number", "quantity", "unit_cost", "cost")} for a in line["allocations"]
        ]
        if line["shortage_quantity"] != "0":
            short = await page.eval_on_selector(
                f"#detail-lines tr.allocs[data-line='{line['line_no']}'] tr.alloc-shortage",
                "r => ['quantity', 'cost'].map(c => r.querySelector(`[data-col=${c}]`).textContent)",
            )
            assert short == [line["shortage_quantity"], line["shortage_cost"]]
    assert await page.locator("#detail-versions tbody tr").count() == len(detail["versions"])
    assert await page.locator("#detail-revisions tbody tr").count() == len(detail["cost_revisions"])


async def test_margin_chart_draws_losses_left_of_the_axis_and_a_401_asks_again(
    pool, database_url, broker_prefix, browser
):
    """The page's own logic on answers stubbed in the browser: a loss-making product, a
    product without a name, a bare list instead of {"items"}, and a key refused mid-session."""
    import json

    client = await client_for(_query_app(database_url, broker_prefix))
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    margins = [
        {
            "sku": "A-1",
            "name": "Anvil",
            "quantity_sold": "3",
            "quantity_returned": "0",
            "revenue": "30.00",
            "cost": "12.00",
            "margin": "18.00",
            "margin_pct": "60.00",
            "shortage_quantity": "0",
        },
        {
            "sku": "B-2",
            "name": None,
            "quantity_sold": "1",
            "quantity_returned": "1",
            "revenue": "0.00",
            "cost": "4.50",
            "margin": "-4.50",
            "margin_pct": None,
            "shortage_quantity": "1",
        },
    ]
    calls: list[str | None] = []

    async def margins_route(route):
        calls.append(route.request.headers.get("authorization"))
        if len(calls) == 1:  # the first key is refused: the page must ask again and retry
            await route.fulfill(
                status=401,
                content_type="application/json",
                body=json.dumps({"error": "unauthorized", "detail": "a valid API key is required"}),
            )
        else:
            await route.fulfill(status=200, content_type="application/json", body=json.dumps(margins))

    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.add_init_script("sessionStorage.setItem('partsemble.apiKey', 'stale-key')")
        await page.route(
            "**/api/v1/sales?*",
            lambda route: route.fulfill(
                status=200,
                content_type="application/json",
                body=json.dumps(
                    {
                        "items": [],
                        "next_cursor": None,
                        "summary": {"count": 0, "revenue": "0.00", "cost": "0.00", "margin": "0.00"},
                    }
                ),
            ),
        )
        await page.route("**/api/v1/products/margins*", margins_route)
        await page.goto(str(client.make_url("/sales#margins")))
        await page.wait_for_selector("#key-dialog[open] #key-error:not([hidden])")
        await page.fill("#key-input", "fresh-key")
        await page.click("#key-submit")
        await page.wait_for_selector("#margin-chart:not([aria-busy]) svg g.bar")
        assert calls == ["Bearer stale-key", "Bearer fresh-key"]
        assert await page.evaluate("sessionStorage.getItem('partsemble.apiKey')") == "fresh-key"

        bars = await page.eval_on_selector_all(
            "#margin-chart g.bar",
            """gs => gs.map(g => {
            const r = g.querySelector('rect');
            return {sku: g.dataset.sku, neg: g.classList.contains('neg'), x: Number(r.getAttribute('x')),
                    width: Number(r.getAttribute('width')), label: g.querySelector('text.label').textContent,
                    value: g.querySelector('text.value').textContent};
        })""",
        )
        axis = float(await page.get_attribute("#margin-chart line.axis", "x1"))
        anvil, loss = bars
        assert (anvil["sku"], anvil["label"], anvil["value"], anvil["neg"]) == ("A-1", "A-1 · Anvil", "18.00", False)
        assert (loss["sku"], loss["label"], loss["value"], loss["neg"]) == ("B-2", "B-2", "-4.50", True)
        assert anvil["x"] == pytest.approx(axis) and loss["x"] + loss["width"] == pytest.approx(axis)  # loss: left
        assert anvil["width"] / loss["width"] == pytest.approx(4)  # 18.00 against 4.50
        assert await page.text_content("#margins-table tr[data-sku='B-2'] td[data-col='margin_pct']") == DASH
        assert await page.get_attribute("#margins-table tr[data-sku='B-2'] td[data-col='margin']", "class") == "num neg"
        assert await page.is_visible("#sales-empty") is False and await page.is_visible("#view-margins")
        assert errors == []
    finally:
        await context.close()
        await client.close()
