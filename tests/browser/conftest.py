"""Fixtures of the Sales tab's browser tests: Debian's chromium driven by Playwright; the
query app (the tab) and the ingest app on loopback ports of their own, the ingest one
allowing the tab's origin (CORS), as `make run` wires them; page helpers (console errors,
axe-core, amounts as the tab formats them)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import settings_for

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
AXE = Path(__file__).parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
DASH = "—"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chromium_present() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


@pytest.fixture
async def browser():
    if not _chromium_present():
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium", pytrace=False)
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


def has_route(app, path: str) -> bool:
    """Whether the app serves ``path`` (endpoints the API branch adds: tests that need them
    fail until it is merged; the page's tolerance of their absence is checked here)."""
    for resource in app.router.resources():
        info = resource.get_info()
        if info.get("path") == path or info.get("formatter") == path:
            return True
    return False


def cors_on_ingest() -> bool:
    """Whether the ingest API answers the tab's cross-origin requests (the API branch)."""
    from shared.settings import Settings

    return "cors_allowed_origins" in Settings.model_fields


@dataclass
class Tab:
    query: TestClient
    ingest: TestClient
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return str(self.query.make_url("/sales"))

    def currency_symbol(self) -> str:
        """The tab shows amounts in the tenant's home currency (USD in these tests) when the
        query API tells it (GET /api/v1/tenant); without it, plain grouped decimals."""
        return "$" if has_route(self.query.app, "/api/v1/tenant") else ""

    def money(self, value: str | None) -> str:
        if value is None:
            return DASH
        d = Decimal(value)
        return f"{'-' if d < 0 else ''}{self.currency_symbol()}{abs(d):,.2f}"

    async def api(self, path: str, **params: Any) -> Any:
        response = await self.query.get(
            path, params={k: str(v) for k, v in params.items() if v is not None}, headers=self.headers
        )
        assert response.status == 200, await response.text()
        return await response.json()


def qty(value: str) -> str:
    d = Decimal(value)
    text = f"{d:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def pct(value: str | None) -> str:
    return DASH if value is None else f"{value}%"


@pytest.fixture
async def tab(pool, database_url, broker_prefix, api_tenant):
    """The query app serving the tab and the ingest app it writes to, on their own ports."""
    from services.ingest.app import create_app as ingest_app
    from services.query.app import create_app as query_app

    query_port, ingest_port = free_port(), free_port()
    query_origin, ingest_origin = f"http://127.0.0.1:{query_port}", f"http://127.0.0.1:{ingest_port}"
    ingest = TestClient(
        TestServer(
            ingest_app(settings_for(database_url, broker_prefix, cors_allowed_origins=query_origin)),
            host="127.0.0.1",
            port=ingest_port,
        )
    )
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
        yield Tab(query, ingest, api_tenant[1])
    finally:
        await query.close()
        await ingest.close()


class Console:
    """What the page reported: uncaught errors and console errors (a failed request is one)."""

    def __init__(self, page, tolerated: tuple[str, ...] = ()) -> None:
        self.errors: list[str] = []
        self.tolerated = tolerated
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if any(path in where or path in message.text for path in self.tolerated):
            return
        self.errors.append(f"console: {message.text} ({where})")


async def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of the page as it is now (evaluated through the DevTools
    protocol, so the page's CSP does not apply to the injected script)."""
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is missing at {AXE}: run scripts/bootstrap.sh test (npm install axe-core)", pytrace=False
        )
    await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in impacts]


async def enter_key(page, key: str) -> None:
    await page.wait_for_selector("#key-dialog[open]")
    await page.fill("#key-input", key)
    await page.click("#key-submit")
