"""The Sales tab (GET /sales of the query service) in Chromium: the list, its filters,
sorting, paging and totals, a sale's detail, product margins, the stock of a product, the
URL state (reload, back button, shared link), a 390 px layout, no console errors and
axe-core without serious or critical violations. Every number shown is compared with the
API's own JSON for the same request. (No screenshot here: scripts/screenshots.py makes them.)"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from tests.browser.conftest import DASH, Console, axe_violations, cors_on_ingest, enter_key, has_route, pct, qty
from tests.browser.seed import seed
from tests.conftest import client_for, settings_for

#: Endpoints of the API branch the page asks for and copes without (a 404 is logged by Chromium).
PENDING = ("/api/v1/tenant", "/transactions")

READ_ROWS = """rows => rows.map(r => {
  const text = col => r.querySelector(`[data-col="${col}"]`).textContent;
  return {id: r.dataset.id, date: text("date"), customer: text("customer"), revenue: text("revenue"),
          cost: text("cost"), margin: text("margin"), margin_pct: text("margin_pct"),
          status: r.querySelector('[data-col="status"] .badge').textContent,
          shortage: r.classList.contains("shortage") &&
                    r.querySelector('[data-col="status"] .badge-shortage') !== null};
})"""


def _expected_rows(tab, items: list[dict]) -> list[dict]:
    def margin_pct(i):
        if i["type"] == "credit_memo" and i["margin_pct"] and i["margin"].startswith("-"):
            return pct(i["margin_pct"] if i["margin_pct"].startswith("-") else f"-{i['margin_pct']}")
        return pct(i["margin_pct"])

    return [
        {
            "id": str(i["id"]),
            "date": i["date"] or DASH,
            "customer": i["customer"] or DASH,
            "revenue": tab.money(i["revenue"]),
            "cost": tab.money(i["cost"]),
            "margin": tab.money(i["margin"]),
            "margin_pct": margin_pct(i),
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
    """Run ``action``, wait for the list request it causes and for the page to render the
    answer; returns the request's query parameters."""
    async with page.expect_response(
        # the list itself, not the counts of voided and deleted sales (limit=1)
        lambda r: urlsplit(r.url).path == "/api/v1/sales" and parse_qs(urlsplit(r.url).query).get("limit") != ["1"]
    ) as answer:
        await action()
    response = await answer.value
    assert response.status == 200, await response.text()
    await page.wait_for_selector("#sales-table:not([aria-busy])", state="attached")
    return {k: v[0] for k, v in parse_qs(urlsplit(response.url).query).items()}


def _percent(margin: str, revenue: str) -> str:
    if Decimal(revenue) == 0:
        return DASH
    return f"{(Decimal(margin) * 100 / Decimal(revenue)).quantize(Decimal('0.01'))}%"


async def _assert_list_matches(page, tab, **params) -> dict:
    body = await tab.api("/api/v1/sales", **params)
    assert await _rows(page) == _expected_rows(tab, body["items"])
    summary = body["summary"]
    counts = {}
    for status in ("voided", "deleted"):
        counts[status] = (await tab.api("/api/v1/sales", **{**params, "status": status, "limit": 1}))["summary"][
            "count"
        ]
    assert await _totals(page) == {
        "posted": str(summary["count"] - counts["voided"] - counts["deleted"]),
        "voided": str(counts["voided"]),
        "deleted": str(counts["deleted"]),
        "revenue": tab.money(summary["revenue"]),
        "cost": tab.money(summary["cost"]),
        "margin": tab.money(summary["margin"]),
        "margin_pct": _percent(summary["margin"], summary["revenue"]),
    }
    assert await page.is_disabled("#next") == (body["next_cursor"] is None)
    return body


def _query_app(database_url: str, broker_prefix: str):
    from services.query.app import create_app

    return create_app(settings_for(database_url, broker_prefix))


async def test_sales_page_is_served_without_a_key_with_its_modules(pool, database_url, broker_prefix):
    client = await client_for(_query_app(database_url, broker_prefix))
    try:
        page = await client.get("/sales")
        assert page.status == 200 and page.content_type == "text/html"
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "connect-src 'self' http://127.0.0.1:8081" in csp
        html = await page.text()
        assert 'src="sales/static/js/main.js"' in html and 'href="sales/static/sales.css"' in html
        assert 'href="sales/static/print.css" media="print"' in html
        config = await client.get("/sales/config.json")
        assert config.status == 200 and await config.json() == {"ingest_url": "http://127.0.0.1:8081"}
        from services.query.sales_tab import STATIC_DIR

        modules = sorted(p.name for p in (STATIC_DIR / "js").glob("*.js"))
        assert {"main.js", "api.js", "format.js", "sales-list.js", "sale-detail.js", "sale-form.js"} <= set(modules)
        for name in modules:
            script = await client.get(f"/sales/static/js/{name}")
            assert script.status == 200 and script.content_type in ("text/javascript", "application/javascript")
            source = await script.text()
            assert len(source.splitlines()) <= 400, f"{name} is over 400 lines"
            assert not any(s in source for s in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"))
            assert "http://" not in source.replace("http://www.w3.org/2000/svg", ""), f"{name} names a foreign origin"
        for css in ("sales.css", "print.css"):
            style = await client.get(f"/sales/static/{css}")
            assert style.status == 200 and style.content_type == "text/css"
        assert (await client.get("/api/v1/sales")).status == 401  # the data still needs the key
    finally:
        await client.close()


async def test_sales_tab_in_a_browser(pool, api_tenant, costing_consumer, tab, browser):
    _tenant_id, headers = api_tenant
    key = headers["Authorization"].split(" ", 1)[1]
    await seed(pool, tab.ingest, headers)
    context = await browser.new_context(viewport={"width": 1680, "height": 900}, locale="en-US")
    try:
        page = await context.new_page()
        pending = PENDING if not has_route(tab.query.app, "/api/v1/tenant") else ()
        if not cors_on_ingest():  # the product picker asks the ingest API (CORS: the API branch)
            pending += (str(tab.ingest.make_url("/api/v1/products")),)
        console = Console(page, tolerated=pending)
        api_calls: list[tuple[str, str | None]] = []
        page.on(
            "request", lambda r: api_calls.append((r.url, r.headers.get("authorization"))) if "/api/" in r.url else None
        )

        # The key is asked for; a wrong one is refused (401) and asked for again.
        await page.goto(tab.url)
        await page.wait_for_selector("#key-dialog[open]")
        await page.fill("#key-input", "not-a-key")
        await page.click("#key-submit")
        await page.wait_for_selector("#key-error:not([hidden])")
        assert "not accepted" in await page.text_content("#key-error")
        await _reload_list(page, lambda: enter_key(page, key))
        assert not await page.is_visible("#key-dialog")

        # The list and its totals are the API's: posted sales counted apart from voided ones.
        body = await _assert_list_matches(page, tab, sort="date", order="desc", limit=25)
        assert body["summary"]["count"] == 12 and sum(i["shortage"] for i in body["items"]) == 2
        assert await page.text_content("#totals [data-total='posted']") == "11"
        assert await page.text_content("#totals [data-total='voided']") == "1"
        if tab.currency_symbol():
            assert (await page.text_content("#totals [data-total='revenue']")).startswith("$")
        # A credit memo: negative revenue and cost; its margin and margin % are given back (negative).
        [memo] = [i for i in body["items"] if i["type"] == "credit_memo"]
        assert memo["revenue"].startswith("-") and memo["cost"].startswith("-")
        memo_pct = await page.text_content(f"#sales-rows tr[data-id='{memo['id']}'] [data-col='margin_pct']")
        assert memo_pct.startswith("-")
        assert await page.locator("#sales-rows td[data-col='customer']", has_text="<b>Dyna</b>").count() == 1
        assert await page.locator("#sales-rows b, #sales-rows img").count() == 0
        align = await page.eval_on_selector("#sales-rows td[data-col='revenue']", "n => getComputedStyle(n).textAlign")
        assert align == "right"

        # Filters go to the URL; the CSV link carries the same filters.
        await page.fill("#filters input[name='customer']", "acme")
        query = await _reload_list(page, lambda: page.click("#apply"))
        assert query["customer"] == "acme"
        await _assert_list_matches(page, tab, customer="acme", sort="date", order="desc", limit=25)
        assert parse_qs(urlsplit(page.url).query)["customer"] == ["acme"]
        csv = parse_qs(urlsplit(await page.get_attribute("#sales-csv", "href")).query)
        assert csv["customer"] == ["acme"] and csv["format"] == ["csv"]
        # A date preset fills the dates; "last year" has none of these sales.
        await page.select_option("#preset", "last_year")
        await _reload_list(page, lambda: page.click("#apply"))
        state = parse_qs(urlsplit(page.url).query)
        assert state["from"][0].endswith("-01-01") and state["to"][0].endswith("-12-31")
        assert await page.is_visible("#sales-empty")
        # Back: the previous filters again, from the URL.
        await _reload_list(page, lambda: page.go_back())
        await _assert_list_matches(page, tab, customer="acme", sort="date", order="desc", limit=25)
        assert await page.input_value("#filters input[name='from']") == ""
        await _reload_list(page, lambda: page.click("#reset"))
        await _assert_list_matches(page, tab, sort="date", order="desc", limit=25)

        # Sort by margin: first click descending, the second ascending.
        query = await _reload_list(page, lambda: page.click("th[data-sort='margin'] button"))
        assert (query["sort"], query["order"]) == ("margin", "desc")
        await _assert_list_matches(page, tab, sort="margin", order="desc", limit=25)
        query = await _reload_list(page, lambda: page.click("th[data-sort='margin'] button"))
        assert (query["sort"], query["order"]) == ("margin", "asc")
        assert await page.get_attribute("th[data-sort='margin']", "aria-sort") == "ascending"

        # Paging by the API's cursors, 5 rows a page: forward to the end and back.
        await _reload_list(page, lambda: page.select_option("#page-size", "5"))
        pages, cursor = [], None
        while True:
            api_page = await tab.api("/api/v1/sales", sort="margin", order="asc", limit=5, cursor=cursor)
            pages.append(api_page)
            if (cursor := api_page["next_cursor"]) is None:
                break
        assert [len(p["items"]) for p in pages] == [5, 5, 2]
        for number in (2, 3):
            query = await _reload_list(page, lambda: page.click("#next"))
            assert query["cursor"] == pages[number - 2]["next_cursor"]
            assert await _rows(page) == _expected_rows(tab, pages[number - 1]["items"])
            assert await page.text_content("#page-info") == f"Page {number} of 3"
        for number in (2, 1):
            await _reload_list(page, lambda: page.click("#prev"))
            assert await _rows(page) == _expected_rows(tab, pages[number - 1]["items"])

        # The detail of a sale that drew on two lots; the open sale is in the URL.
        await _reload_list(page, lambda: page.select_option("#page-size", "25"))
        await _reload_list(page, lambda: page.click("th[data-sort='date'] button"))
        body = await _assert_list_matches(page, tab, sort="date", order="desc", limit=25)
        [receipt] = [i for i in body["items"] if i["external_id"] == "SR-1005"]
        detail = await tab.api(f"/api/v1/sales/{receipt['id']}")
        await page.click(f"#sales-rows tr[data-id='{receipt['id']}'] [data-col='customer']")
        await page.wait_for_selector(f"#detail[data-sale-id='{receipt['id']}']:not([aria-busy])")
        await _assert_detail_matches(page, tab, detail)
        assert parse_qs(urlsplit(page.url).query)["sale"] == [str(receipt["id"])]
        assert len({a["lot_number"] for line in detail["lines"] for a in line["allocations"]}) == 2
        history = await page.eval_on_selector_all("#detail-history li .what", "ns => ns.map(n => n.textContent)")
        assert history[0] == "Entered by hand (version 1)"
        assert any("the cost of lot L1 of W-1 was corrected" in h for h in history)

        # A short sale: "N short — costed at WAC x (estimate) until stock arrives".
        [short] = [i for i in body["items"] if i["external_id"] == "INV-1011"]
        short_detail = await tab.api(f"/api/v1/sales/{short['id']}")
        await page.click(f"#sales-rows tr[data-id='{short['id']}'] a.doc")
        await page.wait_for_selector(f"#detail[data-sale-id='{short['id']}']:not([aria-busy])")
        await _assert_detail_matches(page, tab, short_detail)
        [line] = [x for x in short_detail["lines"] if x["shortage_quantity"] != "0"]
        stock = await tab.api(f"/api/v1/products/{line['sku']}/stock")
        label = await page.text_content("#detail-lines tr.alloc-shortage [data-col='label']")
        wac = tab.money(stock["wac"])
        assert label == f"{qty(line['shortage_quantity'])} short — costed at WAC {wac} (estimate) until stock arrives"

        # The voided sale: its lines' quantities struck through, "Voided" in its history.
        [voided] = [i for i in body["items"] if i["status"] == "voided"]
        voided_detail = await tab.api(f"/api/v1/sales/{voided['id']}")
        await page.click(f"#sales-rows tr[data-id='{voided['id']}'] a.doc")
        await page.wait_for_selector(f"#detail[data-sale-id='{voided['id']}']:not([aria-busy])")
        struck = await page.eval_on_selector_all(
            "#detail-lines tr.line [data-col='quantity'] s", "ns => ns.map(n => n.textContent)"
        )
        assert struck == [qty(x["quantity"]) for x in voided_detail["lines"] if x["quantity"] != "0"]
        assert "Voided" in await page.text_content("#detail-history")

        # The credit memo's return lot.
        await page.click(f"#sales-rows tr[data-id='{memo['id']}'] a.doc")
        await page.wait_for_selector(f"#detail[data-sale-id='{memo['id']}']:not([aria-busy])")
        assert await page.get_attribute("#detail-return-lots li", "data-lot") == "RET-manual-CM-1008-1"

        # Reload: the same filters and the same sale open; back closes it again step by step.
        await page.reload()
        await page.wait_for_selector(f"#detail[data-sale-id='{memo['id']}']:not([aria-busy])")
        await page.wait_for_selector("#sales-table:not([aria-busy])", state="attached")
        await _assert_list_matches(page, tab, sort="date", order="desc", limit=25)
        await page.go_back()
        await page.wait_for_selector(f"#detail[data-sale-id='{voided['id']}']:not([aria-busy])")
        await page.click("#detail-close")
        await page.wait_for_selector("#detail", state="hidden")
        assert "sale" not in parse_qs(urlsplit(page.url).query)

        assert await axe_violations(page) == []

        # Product margins.
        async with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/products/margins"):
            await page.click("#tab-margins")
        await page.wait_for_selector("#margin-chart:not([aria-busy]) svg g.bar")
        margins = await tab.api("/api/v1/products/margins")
        items = margins["items"]
        table = await page.eval_on_selector_all(
            "#margins-table tbody tr",
            "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.col, c.textContent])))",
        )
        assert table == [
            {
                "sku": i["sku"],
                "name": i["name"] or DASH,
                "quantity_sold": qty(i["quantity_sold"]),
                "quantity_returned": qty(i["quantity_returned"]),
                "revenue": tab.money(i["revenue"]),
                "cost": tab.money(i["cost"]),
                "margin": tab.money(i["margin"]),
                "margin_pct": pct(i["margin_pct"]),
                "shortage_quantity": qty(i["shortage_quantity"]),
            }
            for i in items
        ]
        assert await axe_violations(page) == []

        # Stock and lots of W-1, as the API gives them.
        await page.click("#tab-stock")
        await page.fill("#stock-form input[name='sku']", "W-1")
        async with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/products/W-1/stock"):
            await page.click("#stock-form button[type='submit']")
        await page.wait_for_selector("#stock-card:not([aria-busy])")
        stock = await tab.api("/api/v1/products/W-1/stock")
        facts = await page.eval_on_selector_all(
            "#stock-facts dd", "ns => Object.fromEntries(ns.map(n => [n.dataset.col, n.textContent]))"
        )
        assert facts == {
            "on_hand": qty(stock["on_hand"]),
            "wac": tab.money(stock["wac"]),
            "open_shortage": qty(stock["open_shortage"]),
        }
        lots = await page.eval_on_selector_all(
            "#lots-table tbody tr",
            "rs => rs.map(r => [r.dataset.lot, r.querySelector('[data-col=remaining]').textContent])",
        )
        assert lots == [[lot["lot_number"], qty(lot["remaining"])] for lot in stock["lots"]]
        assert parse_qs(urlsplit(page.url).query) == {"view": ["stock"], "sku": ["W-1"]}
        await page.reload()
        await page.wait_for_selector("#stock-card:not([aria-busy]) #stock-facts dd")
        assert await page.text_content("#stock-title") == "W-1 · Widget"
        assert await axe_violations(page) == []

        # 390 px wide: nothing wider than the screen but the tables' own scrolling boxes.
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(tab.url + f"?sale={memo['id']}")
        await page.wait_for_selector(f"#detail[data-sale-id='{memo['id']}']:not([aria-busy])")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        broken = await page.evaluate(
            "[...document.querySelectorAll('th, .tab, button, dt')].filter(n => n.offsetParent &&"
            " getComputedStyle(n).wordBreak === 'break-all').length"
        )
        assert broken == 0

        assert {auth for _, auth in api_calls} == {"Bearer not-a-key", f"Bearer {key}"}
        # No console error but, perhaps, the refused key's 401.
        assert all("401" in e for e in console.errors), console.errors
    finally:
        await context.close()


async def _assert_detail_matches(page, tab, detail: dict) -> None:
    facts = await page.eval_on_selector_all(
        "#detail-facts dd[data-col]", "nodes => Object.fromEntries(nodes.map(n => [n.dataset.col, n.textContent]))"
    )
    assert {k: facts[k] for k in ("revenue", "cost", "margin")} == {
        k: tab.money(detail[k]) for k in ("revenue", "cost", "margin")
    }
    assert facts["date"] == detail["date"] and facts["external_id"] == detail["external_id"]
    for line in detail["lines"]:
        row = page.locator(f"#detail-lines tr.line[data-line='{line['line_no']}']")
        shown = await row.evaluate("r => Object.fromEntries([...r.cells].map(c => [c.dataset.col, c.textContent]))")
        assert {k: shown[k] for k in ("quantity", "revenue", "cost", "margin")} == {
            "quantity": qty(line["quantity"]),
            "revenue": tab.money(line["revenue"]),
            "cost": tab.money(line["cost"]),
            "margin": tab.money(line["margin"]),
        }
        allocations = await page.eval_on_selector_all(
            f"#detail-lines tr.allocs[data-line='{line['line_no']}'] tr.alloc",
            "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.col, c.textContent])))",
        )
        assert [{k: a[k] for k in ("lot_number", "quantity", "unit_cost", "cost")} for a in allocations] == [
            {
                "lot_number": a["lot_number"],
                "quantity": qty(a["quantity"]),
                "unit_cost": tab.money(a["unit_cost"]),
                "cost": tab.money(a["cost"]),
            }
            for a in line["allocations"]
        ]
    assert await page.locator("#detail-revisions tbody tr").count() == len(detail["cost_revisions"])
