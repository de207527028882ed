"""The QuickBooks connect flow (docs/security.md, "QuickBooks connect flow"), in the browser:

* ``GET /oauth/quickbooks/start`` (+ ``start.js``): a page that starts it with the API key;
* ``GET /oauth/quickbooks/connect`` (API key) → Intuit's authorize URL with a signed,
  single-use state bound to the browser by a cookie;
* ``GET /oauth/quickbooks/callback`` checks state, cookie and nonce and links the realm
  to the tenant (or refuses with a small HTML page, JSON for a client that prefers it).
"""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import asyncpg
from aiohttp import web

from services.ingest.app_keys import SETTINGS
from services.ingest.qbo import state as state_module
from services.ingest.qbo.app_keys import QBO
from services.ingest.qbo.oauth import ReconnectRequired
from services.ingest.qbo.state import StateError, browser_matches, digest, make_state, new_secret, read_state
from shared.api_keys import bearer_key, lookup_key
from shared.db import tenant_transaction
from shared.logging import get_logger
from shared.plans import unavailable
from shared.secrets import state_secret
from shared.web import POOL, ApiError, error_body, json_response

routes = web.RouteTableDef()
SCOPE = "com.intuit.quickbooks.accounting"

# --- The connect flow (docs/security.md, "QuickBooks connect flow") ----------------------
#
# connect: API key → a single-use nonce stored (hashed) in oauth_states with the hash of a
# random browser secret, set in an HttpOnly cookie; the signed state carries tenant, nonce,
# expiry and the browser secret's hash. callback: signature and expiry, then the cookie,
# then the nonce is still unused (before spending the code), then the code is exchanged,
# then ONE tenant-scoped transaction consumes the nonce and links the realm.

COOKIE = "partsemble_qbo_connect"
COOKIE_PATH = "/oauth/quickbooks"
CONNECT_PATH = "/oauth/quickbooks/connect"
#: How far back the initial sync may start (``?since=``): CDC's reach.
MAX_SINCE_DAYS = 30
log = get_logger("qbo.connect")

STATE_NONCE_OPEN = """
SELECT used_at IS NULL AND expires_at > now() AS open, used_at IS NOT NULL AS used FROM oauth_states
WHERE nonce_hash = $1 AND browser_hash = $2"""
CONSUME_STATE = """
UPDATE oauth_states SET used_at = now()
WHERE nonce_hash = $1 AND browser_hash = $2 AND used_at IS NULL AND expires_at > now()
RETURNING tenant_id, initial_since"""
INSERT_STATE = """
INSERT INTO oauth_states (nonce_hash, tenant_id, browser_hash, expires_at, initial_since)
VALUES ($1, $2, $3, to_timestamp($4), $5)"""
#: The initial sync starts at the date asked for (the catch-up reads from the watermark).
SET_INITIAL_WATERMARK = "UPDATE qbo_connections SET cdc_watermark = $2, updated_at = now() WHERE realm_id = $1"
PURGE_STATES = "DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'"
REALM_TENANT = "SELECT tenant_id FROM qbo_realm_tenant($1)"
REALM_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # Intuit's are decimal digits

# reason code → (status, page title, page text): every refusal the callback can answer.
REFUSALS = {
    "consent_denied": (
        400,
        "QuickBooks was not connected",
        "The connection was cancelled in QuickBooks; nothing was connected. Start again from "
        "Partsemble if you want to connect.",
    ),
    "missing_state": (400, "Invalid connection link", "This link is incomplete. Start again from Partsemble."),
    "malformed_state": (
        403,
        "Invalid connection link",
        "This link was not issued by Partsemble. Start again from Partsemble.",
    ),
    "bad_signature": (
        403,
        "Invalid connection link",
        "This link was not issued by Partsemble. Start again from Partsemble.",
    ),
    "expired_state": (
        400,
        "Connection link expired",
        "This connection attempt took too long and has expired. Start again from Partsemble.",
    ),
    "missing_cookie": (
        403,
        "Connection started elsewhere",
        "This connection was not started from this browser (or its cookie was blocked). "
        "Start again from Partsemble in this browser.",
    ),
    "cookie_mismatch": (
        403,
        "Connection started elsewhere",
        "This connection was not started from this browser. Start again from Partsemble in this browser.",
    ),
    "unknown_state": (
        403,
        "Invalid connection link",
        "This connection attempt is unknown. Start again from Partsemble.",
    ),
    "state_used": (
        400,
        "Connection link already used",
        "This connection link has already been used. Start again from Partsemble.",
    ),
    "invalid_callback": (
        400,
        "QuickBooks was not connected",
        "QuickBooks did not send a valid authorization. Start again from Partsemble.",
    ),
    "code_rejected": (
        400,
        "QuickBooks was not connected",
        "QuickBooks did not accept the authorization (it may have expired). Start again from Partsemble.",
    ),
    "quickbooks_unavailable": (
        502,
        "QuickBooks could not be reached",
        "QuickBooks could not confirm the authorization just now; nothing was connected. "
        "Start again from Partsemble in a moment.",
    ),
    "realm_other_tenant": (
        409,
        "Company already connected",
        "That company is connected to another Partsemble account; disconnect it there first.",
    ),
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>{title} - Partsemble</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def _accept_q(request: web.Request, media: str) -> float:
    """The quality the Accept header gives ``media`` (exact type, type/* or */*)."""
    best, best_rank = 0.0, -1
    kind = media.split("/")[0]
    for part in request.headers.get("Accept", "").split(","):
        name, *params = [p.strip() for p in part.split(";")]
        rank = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(name.lower(), -1)
        if rank <= best_rank:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best, best_rank = q, rank
    return best


def _wants_json(request: web.Request) -> bool:
    json_q = _accept_q(request, "application/json")
    return json_q > 0 and json_q > _accept_q(request, "text/html")


def _secure_cookie(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return (
        request.secure or forwarded == "https" or request.app[SETTINGS].qbo_redirect_uri.lower().startswith("https://")
    )


_Response = TypeVar("_Response", bound=web.StreamResponse)


def _no_store(response: _Response) -> _Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _page(request: web.Request, status: int, title: str, text: str, body: dict[str, Any] | None = None) -> web.Response:
    """The callback's answer: a small HTML page (JSON for a client that prefers it); the
    flow's cookie is cleared either way (a state is good for one attempt)."""
    if _wants_json(request):
        response = json_response(body, status)
    else:
        response = web.Response(
            status=status,
            content_type="text/html",
            charset="utf-8",
            text=_PAGE.format(title=html.escape(title), text=html.escape(text)),
        )
        response.headers["Content-Security-Policy"] = "default-src 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
    response.del_cookie(COOKIE, path=COOKIE_PATH, secure=_secure_cookie(request), httponly=True, samesite="Lax")
    return _no_store(response)


def _refuse(request: web.Request, reason: str, **fields: object) -> web.Response:
    status, title, text = REFUSALS[reason]
    log.warning("qbo.connect.refused", reason=reason, status=status, **fields)
    return _page(request, status, title, text, error_body(reason, text))


_STATIC = Path(__file__).with_name("static")


@routes.get("/oauth/quickbooks/start")
async def start_page(_request: web.Request) -> web.StreamResponse:
    """A page that starts the connect flow from the browser (the API key pasted, sent as a
    header by the page's script), so the browser holds the cookie the callback checks."""
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


def initial_since(request: web.Request) -> datetime | None:
    """``?since=YYYY-MM-DD``: where the initial sync starts (start of that day, UTC); at most
    ``MAX_SINCE_DAYS`` days back (CDC's reach) and not in the future. Absent: the default
    (``QBO_INITIAL_IMPORT_DAYS`` for a new connection, where it left off for a reconnection)."""
    values = request.query.getall("since", [])
    if not values:
        return None
    problem = f"a date YYYY-MM-DD within the last {MAX_SINCE_DAYS} days"
    if len(values) > 1:
        raise ApiError(400, "invalid_parameter", {"parameter": "since", "problem": "given more than once"})
    try:
        day = date.fromisoformat(values[0]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", values[0]) else None
    except ValueError:
        day = None
    today = datetime.now(UTC).date()
    if day is None or day > today or day < today - timedelta(days=MAX_SINCE_DAYS):
        raise ApiError(400, "invalid_parameter", {"parameter": "since", "problem": problem})
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


@routes.get(CONNECT_PATH)
async def connect(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    secret = state_secret(settings.oauth_state_secret)
    values = [value for name, value in request.raw_headers if name.lower() == b"authorization"]
    key = bearer_key(values[0]) if len(values) == 1 else None  # as auth_middleware reads it
    match = await lookup_key(request.app[POOL], key) if key is not None else None
    if match is None:
        raise ApiError(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")
    if not match.sales_tracking:
        raise unavailable()
    tenant = match.tenant_id
    since = initial_since(request)
    nonce, browser = new_secret(), new_secret()
    expires_at = int(time.time()) + state_module.TTL
    async with tenant_transaction(request.app[POOL], tenant) as conn:
        await conn.execute(PURGE_STATES)
        await conn.execute(INSERT_STATE, digest(nonce), tenant, digest(browser), expires_at, since)
    query = urlencode(
        {
            "client_id": settings.qbo_client_id or "",
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": settings.qbo_redirect_uri,
            "state": make_state(tenant, nonce, digest(browser), secret, expires_at),
        }
    )
    url = f"{settings.qbo_oauth_authorize_url}?{query}"
    if _wants_json(request):
        response = json_response({"authorize_url": url})
    else:
        response = web.Response(status=302, headers={"Location": url})
    response.set_cookie(
        COOKIE,
        browser,
        max_age=state_module.TTL,
        path=COOKIE_PATH,
        secure=_secure_cookie(request),
        httponly=True,
        samesite="Lax",
    )
    log.info("qbo.connect.started", tenant=str(tenant))
    return _no_store(response)


@routes.get("/oauth/quickbooks/callback")
async def callback(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    secret = state_secret(settings.oauth_state_secret)
    query = request.query
    if "error" in query:  # the user declined (access_denied) or Intuit refused the request
        return _refuse(request, "consent_denied")
    try:
        state = read_state(query.get("state"), secret)
    except StateError as exc:
        return _refuse(request, exc.reason)
    fields = {"tenant": str(state.tenant_id)}
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return _refuse(request, "missing_cookie", **fields)
    if not browser_matches(state, cookie):
        return _refuse(request, "cookie_mismatch", **fields)
    code, realm_id = query.get("code"), query.get("realmId")
    if not code or not realm_id or not REALM_ID.fullmatch(realm_id):
        return _refuse(request, "invalid_callback", **fields)
    nonce_hash = digest(state.nonce)
    pool = request.app[POOL]
    # Before spending the code: is the state still open? (Only a hint: the consuming UPDATE
    # below decides, in the transaction that links.)
    async with tenant_transaction(pool, state.tenant_id, readonly=True) as conn:
        row = await conn.fetchrow(STATE_NONCE_OPEN, nonce_hash, state.browser_hash)
    if row is None:
        return _refuse(request, "unknown_state", **fields)
    if not row["open"]:
        return _refuse(request, "state_used" if row["used"] else "expired_state", **fields)
    qbo = request.app[QBO]
    try:
        tokens = await qbo.oauth.exchange_code(code)
    except ReconnectRequired:
        return _refuse(request, "code_rejected", **fields)
    except (TimeoutError, aiohttp.ClientError, KeyError, ValueError) as exc:
        return _refuse(request, "quickbooks_unavailable", error=type(exc).__name__, **fields)
    refusal, owner = None, None
    async with tenant_transaction(pool, state.tenant_id) as conn:
        consumed = await conn.fetchrow(CONSUME_STATE, nonce_hash, state.browser_hash)
        if consumed is None:
            refusal = "state_used"  # consumed (or expired) since the check above
        else:
            owner = await conn.fetchval(REALM_TENANT, realm_id)
            if owner is not None and owner != state.tenant_id:
                refusal = "realm_other_tenant"  # the state stays consumed; nothing linked
            else:
                try:
                    async with conn.transaction():  # a savepoint: a lost race for a new realm refuses
                        linked = await qbo.tokens.save(conn, realm_id, state.tenant_id, tokens)
                except (asyncpg.UniqueViolationError, asyncpg.InsufficientPrivilegeError):
                    linked = False
                if not linked:
                    refusal = "realm_other_tenant"
                elif consumed["initial_since"] is not None:
                    await conn.execute(SET_INITIAL_WATERMARK, realm_id, consumed["initial_since"])
    if refusal:
        return _refuse(request, refusal, realm=realm_id, **fields)
    qbo.worker.request_sync(realm_id)
    log.info("qbo.connected", realm=realm_id, **fields)
    since = consumed["initial_since"] if consumed is not None else None
    if since is not None:  # the date asked for, not the default
        importing = f"Sales changed since {since.date().isoformat()} are being imported"
    elif owner is not None:  # a reconnection continues where the connection left off
        importing = "Sales changed since the last sync are being imported"
    else:
        importing = f"Sales from the last {settings.qbo_initial_import_days} days are being imported"
    return _page(
        request,
        200,
        "QuickBooks connected",
        f"Your QuickBooks company is connected to Partsemble. {importing}; you can close this page "
        "and go back to Partsemble.",
        {
            "realm_id": realm_id,
            "status": "connected",
            "initial_import_days": settings.qbo_initial_import_days,
            "since": since.date().isoformat() if since is not None else None,
        },
    )
