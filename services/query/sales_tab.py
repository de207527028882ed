"""The Sales tab: a small static page (plain HTML, CSS and ES modules, no build step)
served by the query service at ``GET /sales``. The page calls the query API of the
same origin, and the ingest API (manual sales, products, QuickBooks connections) at
``INGEST_PUBLIC_URL``, with the API key the user types in (kept in sessionStorage), so
serving it needs no key: it holds no tenant data. ``GET /sales/config.json`` tells the
page where the ingest API is."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from yarl import URL

from services.query.app_keys import SETTINGS
from shared.web import json_response

STATIC_DIR = Path(__file__).parent / "static"


def ingest_origin(ingest_public_url: str) -> str:
    """``scheme://host[:port]`` of the ingest API (what CSP's connect-src names)."""
    url = URL(ingest_public_url)
    if not url.is_absolute() or url.scheme not in ("http", "https"):
        raise ValueError(f"INGEST_PUBLIC_URL must be an absolute http(s) URL, not {ingest_public_url!r}")
    return str(url.origin())


def content_security_policy(ingest_public_url: str) -> str:
    """The page builds its DOM with textContent only; nothing inline, nothing foreign; it
    talks to its own origin and to the ingest API's."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {ingest_origin(ingest_public_url)}; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def page_headers(ingest_public_url: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(ingest_public_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


async def sales_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=page_headers(request.app[SETTINGS].ingest_public_url))


async def sales_config(request: web.Request) -> web.Response:
    """Where the page finds the ingest API (public: no tenant data)."""
    response = json_response({"ingest_url": request.app[SETTINGS].ingest_public_url.rstrip("/")})
    response.headers["Cache-Control"] = "no-cache"
    return response


def add_sales_tab(app: web.Application) -> None:
    """Register ``GET /sales`` (the page), ``/sales/config.json`` and ``/sales/static/``
    (its modules and styles)."""
    ingest_origin(app[SETTINGS].ingest_public_url)  # refuse a bad setting at start-up, not per request
    app.router.add_get("/sales", sales_page, name="sales_tab")
    app.router.add_get("/sales/config.json", sales_config, name="sales_config")
    app.router.add_static("/sales/static/", STATIC_DIR, name="sales_static")
