"""The Sales tab: a small static page (plain HTML, CSS and an ES module, no build
step) served by the query service at ``GET /sales``. The page calls the query API
of the same origin with the API key the user types in (kept in sessionStorage),
so serving it needs no key: it holds no tenant data."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"

#: The page builds its DOM with textContent only; nothing inline, nothing foreign.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def sales_page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


def add_sales_tab(app: web.Application) -> None:
    """Register ``GET /sales`` (the page) and ``/sales/static/`` (its script and styles)."""
    app.router.add_get("/sales", sales_page, name="sales_tab")
    app.router.add_static("/sales/static/", STATIC_DIR, name="sales_static")
