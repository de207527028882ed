"""Regenerate the Sales tab's pictures in docs/ from the demo company.

    .venv/bin/python scripts/screenshots.py            # uses `make run` if it is up, else starts it

With the stack already running (`make run`: query on :8082 with the demo company), it only
drives Chromium; otherwise it starts scripts/run.sh (the whole system and the QuickBooks
simulator's demo company), waits for the demo's sales to be costed, takes the pictures
and stops what it started. Pictures: docs/sales-tab.png (the list with a sale open) and
docs/sales-tab-<view>.png for the other views."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KEY_FILE = ROOT / "var" / "demo-api-key"
QUERY = f"http://127.0.0.1:{os.environ.get('QUERY_PORT', '8082')}"
CHROMIUM = "/usr/bin/chromium"


def _get(url: str, key: str | None = None) -> dict | None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a loopback http URL
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - a loopback http URL
            return json.loads(response.read() or b"null")
    except OSError:
        return None


def _up() -> bool:
    return _get(f"{QUERY}/readyz") is not None


@contextlib.contextmanager
def _stack():
    """The running stack, or one started (and stopped) here."""
    if _up():
        yield
        return
    print("screenshots: starting scripts/run.sh (make run)", file=sys.stderr)
    process = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, start_new_session=True)  # noqa: S607
    try:
        deadline = time.monotonic() + 180
        while not (_up() and KEY_FILE.is_file()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("screenshots: the stack did not start (see its output above)")
            time.sleep(1)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)


def _wait_for_sales(key: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = _get(f"{QUERY}/api/v1/sales?limit=100", key)
        if body and body["items"] and all(i["status"] != "posted" or i["cost"] != "0.00" for i in body["items"]):
            return body
        time.sleep(2)
    raise SystemExit("screenshots: the demo company's sales were not costed within 2 minutes")


async def _shoot(key: str, sales: dict) -> None:
    from playwright.async_api import async_playwright

    items = sales["items"]
    shown = next((i for i in items if i["shortage"]), None) or next(i for i in items if i["status"] == "posted")
    sku = _first_sku(key, items)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        context = await browser.new_context(viewport={"width": 1600, "height": 900}, locale="en-US")
        await context.add_init_script(f"sessionStorage.setItem('partsemble.apiKey', {key!r})")
        page = await context.new_page()
        shots = [
            ("sales-tab.png", f"?sale={shown['id']}", f"#detail[data-sale-id='{shown['id']}']:not([aria-busy])"),
            ("sales-tab-margins.png", "?view=margins", "#margin-chart:not([aria-busy]) svg"),
            ("sales-tab-stock.png", f"?view=stock&sku={sku}", "#stock-card:not([aria-busy]) #stock-facts dd"),
            ("sales-tab-shortages.png", "?view=shortages&status=all", "#shortages-table:not([aria-busy])"),
            ("sales-tab-connections.png", "?view=connections", "#connections:not([aria-busy])"),
        ]
        for name, path, ready in shots:
            await page.goto(f"{QUERY}/sales{path}")
            await page.wait_for_selector(ready, state="attached")
            await page.wait_for_timeout(300)
            await page.screenshot(path=str(DOCS / name), full_page=True)
            print(f"screenshots: docs/{name}", file=sys.stderr)
        await page.goto(f"{QUERY}/sales")
        await page.wait_for_selector("#sales-table:not([aria-busy]) #sales-rows tr")
        await page.click("#new-sale")
        await page.wait_for_selector("#sale-dialog[open]")
        await page.screenshot(path=str(DOCS / "sales-tab-new-sale.png"))
        print("screenshots: docs/sales-tab-new-sale.png", file=sys.stderr)
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"{QUERY}/sales?sale={shown['id']}")
        await page.wait_for_selector(f"#detail[data-sale-id='{shown['id']}']:not([aria-busy])")
        await page.screenshot(path=str(DOCS / "sales-tab-phone.png"), full_page=True)
        print("screenshots: docs/sales-tab-phone.png", file=sys.stderr)
        await browser.close()


def _first_sku(key: str, items: list[dict]) -> str:
    for item in items:
        detail = _get(f"{QUERY}/api/v1/sales/{item['id']}", key) or {}
        for line in detail.get("lines", []):
            if line.get("sku") and line.get("kind") == "inventory":
                return str(line["sku"])
    return ""


def main() -> None:
    with _stack():
        key = KEY_FILE.read_text().strip()
        asyncio.run(_shoot(key, _wait_for_sales(key)))


if __name__ == "__main__":
    main()
