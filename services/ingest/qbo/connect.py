"""The QuickBooks connect flow: the pipeline's flow (``services.ingest.channels.connect``)
at ``/oauth/quickbooks/connect`` and ``/callback``, and a page that starts it from the
browser (``GET /oauth/quickbooks/start`` + ``start.js``; the API key pasted, sent as a
header by the page's script, so the browser holds the cookie the callback checks)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.ingest.channels.connect import (
    CONSUME_STATE,
    INSERT_STATE,
    MAX_SINCE_DAYS,
    PURGE_STATES,
    STATE_NONCE_OPEN,
    Flow,
    _no_store,
    connect_routes,
    initial_since,
)
from services.ingest.qbo.oauth import REALM_ID, SCOPE
from services.ingest.qbo.provider import QuickBooksProvider

__all__ = [
    "CONNECT_PATH",
    "CONSUME_STATE",
    "COOKIE",
    "COOKIE_PATH",
    "INSERT_STATE",
    "MAX_SINCE_DAYS",
    "PURGE_STATES",
    "REALM_ID",
    "REALM_TENANT",
    "REFUSALS",
    "SCOPE",
    "STATE_NONCE_OPEN",
    "initial_since",
    "routes",
]

COOKIE = "partsemble_qbo_connect"
#: The QuickBooks instance of the flow; the redirect URI only decides the cookie's ``Secure``
#: when the request does not (the app's settings: see ``flow_for``).
FLOW = Flow.of(QuickBooksProvider(), redirect_uri="", cookie=COOKIE)
COOKIE_PATH = FLOW.cookie_path
CONNECT_PATH = FLOW.connect_path
REFUSALS = FLOW.refusals
#: Which tenant a QuickBooks realm is linked to (the pipeline asks channel_realm_tenant()).
REALM_TENANT = "SELECT tenant_id FROM qbo_realm_tenant($1)"
_STATIC = Path(__file__).with_name("static")

routes = web.RouteTableDef()


@routes.get("/oauth/quickbooks/start")
async def start_page(_request: web.Request) -> web.StreamResponse:
    """A page that starts the connect flow from the browser."""
    return _no_store(
        web.FileResponse(
            _STATIC / "connect.html",
            headers={
                "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
                "connect-src 'self'; form-action 'none'; frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer",
            },
        )
    )


@routes.get("/oauth/quickbooks/start.js")
async def start_script(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(_STATIC / "start.js", headers={"Content-Type": "text/javascript"})


def flow_for(redirect_uri: str) -> Flow:
    """The QuickBooks flow with the app's redirect URI (``QBO_REDIRECT_URI``)."""
    return Flow.of(QuickBooksProvider(), redirect_uri=redirect_uri, cookie=COOKIE)


def flow_routes(redirect_uri: str) -> web.RouteTableDef:
    return connect_routes(flow_for(redirect_uri))
