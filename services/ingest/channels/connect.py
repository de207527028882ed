"""Every provider's connect flow (docs/security.md, "The QuickBooks connect flow"; the same
for each provider under ``/oauth/<provider.name>/``), in the browser:

* ``GET /oauth/<name>/connect`` (API key) → the provider's authorize URL with a signed,
  single-use state bound to the browser by a cookie;
* ``GET /oauth/<name>/callback`` checks state, cookie and nonce, exchanges the code,
  discovers the accounts the consent linked and links them to the tenant (or refuses with
  a small HTML page, JSON for a client that prefers it). An account linked to another
  tenant is refused.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import asyncpg
from aiohttp import web

from services.ingest.app_keys import SETTINGS
from services.ingest.channels import state as state_module
from services.ingest.channels.channel import CHANNELS
from services.ingest.channels.provider import ReconnectRequired, SalesChannelProvider
from services.ingest.channels.state import StateError, browser_matches, digest, make_state, new_secret, read_state
from shared.api_keys import bearer_key, lookup_key
from shared.db import tenant_transaction
from shared.logging import get_logger
from shared.plans import unavailable
from shared.secrets import state_secret
from shared.web import POOL, ApiError, error_body, json_response

# --- The connect flow (docs/security.md, "The QuickBooks connect flow") ------------------
#
# connect: API key → a single-use nonce stored (hashed) in oauth_states with the hash of a
# random browser secret, set in an HttpOnly cookie; the signed state carries tenant, nonce,
# expiry and the browser secret's hash. callback: signature and expiry, then the cookie,
# then the nonce is still unused (before spending the code), then the code is exchanged,
# then ONE tenant-scoped transaction consumes the nonce and links the realm.

#: How far back the initial sync may start (``?since=``) unless the provider says otherwise.
MAX_SINCE_DAYS = 30

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
SET_INITIAL_WATERMARK = """
UPDATE qbo_connections SET cdc_watermark = $2, updated_at = now() WHERE realm_id = $1 AND provider = $3"""
PURGE_STATES = "DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'"
REALM_TENANT = "SELECT tenant_id FROM channel_realm_tenant($2, $1)"


def refusals(label: str, noun: str, unavailable: str) -> dict[str, tuple[int, str, str]]:
    """reason code → (status, page title, page text): every refusal the callback can answer
    (``unavailable``: the reason code of a provider that could not be reached)."""
    return {
        "consent_denied": (
            400,
            f"{label} was not connected",
            f"The connection was cancelled in {label}; nothing was connected. Start again from "
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
            f"{label} was not connected",
            f"{label} did not send a valid authorization. Start again from Partsemble.",
        ),
        "code_rejected": (
            400,
            f"{label} was not connected",
            f"{label} did not accept the authorization (it may have expired). Start again from Partsemble.",
        ),
        unavailable: (
            502,
            f"{label} could not be reached",
            f"{label} could not confirm the authorization just now; nothing was connected. "
            "Start again from Partsemble in a moment.",
        ),
        "realm_other_tenant": (
            409,
            f"{noun.capitalize()} already connected",
            f"That {noun} is connected to another Partsemble account; disconnect it there first.",
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


def _secure_cookie(request: web.Request, redirect_uri: str) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https" or redirect_uri.lower().startswith("https://")


_Response = TypeVar("_Response", bound=web.StreamResponse)


def _no_store(response: _Response) -> _Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@dataclass(frozen=True)
class Flow:
    """One provider's connect flow: its paths, cookie and refusals."""

    provider: SalesChannelProvider
    redirect_uri: str
    cookie: str
    cookie_path: str
    connect_path: str
    callback_path: str
    refusals: dict[str, tuple[int, str, str]]
    unavailable: str

    @classmethod
    def of(cls, provider: SalesChannelProvider, redirect_uri: str, cookie: str | None = None) -> Flow:
        base = f"/oauth/{provider.name}"
        unavailable = f"{provider.name}_unavailable"
        return cls(
            provider,
            redirect_uri,
            cookie or f"partsemble_{provider.key}_connect",
            base,
            f"{base}/connect",
            f"{base}/callback",
            refusals(provider.label, provider.account_noun, unavailable),
            unavailable,
        )

    def page(
        self, request: web.Request, status: int, title: str, text: str, body: dict[str, Any] | None = None
    ) -> web.Response:
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
        response.del_cookie(
            self.cookie,
            path=self.cookie_path,
            secure=_secure_cookie(request, self.redirect_uri),
            httponly=True,
            samesite="Lax",
        )
        return _no_store(response)

    def refuse(self, request: web.Request, reason: str, **fields: object) -> web.Response:
        status, title, text = self.refusals[reason]
        get_logger(f"{self.provider.key}.connect").warning(
            f"{self.provider.key}.connect.refused", reason=reason, status=status, **fields
        )
        return self.page(request, status, title, text, error_body(reason, text))


def initial_since(request: web.Request, max_days: int = MAX_SINCE_DAYS) -> datetime | None:
    """``?since=YYYY-MM-DD``: where the initial sync starts (start of that day, UTC); at most
    ``max_days`` days back (the provider's catch-up reach) and not in the future. Absent: the default
    (``QBO_INITIAL_IMPORT_DAYS`` for a new connection, where it left off for a reconnection)."""
    values = request.query.getall("since", [])
    if not values:
        return None
    problem = f"a date YYYY-MM-DD within the last {max_days} days"
    if len(values) > 1:
        raise ApiError(400, "invalid_parameter", {"parameter": "since", "problem": "given more than once"})
    try:
        day = date.fromisoformat(values[0]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", values[0]) else None
    except ValueError:
        day = None
    today = datetime.now(UTC).date()
    if day is None or day > today or day < today - timedelta(days=max_days):
        raise ApiError(400, "invalid_parameter", {"parameter": "since", "problem": problem})
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def connect_routes(flow: Flow) -> web.RouteTableDef:
    """The provider's ``connect`` and ``callback`` routes."""
    routes = web.RouteTableDef()
    provider, name, key = flow.provider, flow.provider.name, flow.provider.key
    log = get_logger(f"{key}.connect")

    @routes.get(flow.connect_path)
    async def connect(request: web.Request) -> web.Response:
        settings = request.app[SETTINGS]
        secret = state_secret(settings.oauth_state_secret)
        values = [value for name_, value in request.raw_headers if name_.lower() == b"authorization"]
        api_key = bearer_key(values[0]) if len(values) == 1 else None  # as auth_middleware reads it
        match = await lookup_key(request.app[POOL], api_key) if api_key is not None else None
        if match is None:
            raise ApiError(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")
        if not match.sales_tracking:
            raise unavailable()
        tenant = match.tenant_id
        since = initial_since(request, provider.max_since_days)
        nonce, browser = new_secret(), new_secret()
        expires_at = int(time.time()) + state_module.TTL
        async with tenant_transaction(request.app[POOL], tenant) as conn:
            await conn.execute(PURGE_STATES)
            await conn.execute(INSERT_STATE, digest(nonce), tenant, digest(browser), expires_at, since)
        channel = request.app[CHANNELS][name]
        state = make_state(tenant, nonce, digest(browser), secret, expires_at, domain=key)
        url = channel.provider.oauth.authorize_url(state)
        if _wants_json(request):
            response = json_response({"authorize_url": url})
        else:
            response = web.Response(status=302, headers={"Location": url})
        response.set_cookie(
            flow.cookie,
            browser,
            max_age=state_module.TTL,
            path=flow.cookie_path,
            secure=_secure_cookie(request, flow.redirect_uri),
            httponly=True,
            samesite="Lax",
        )
        log.info(f"{key}.connect.started", tenant=str(tenant))
        return _no_store(response)

    @routes.get(flow.callback_path)
    async def callback(request: web.Request) -> web.Response:
        settings = request.app[SETTINGS]
        secret = state_secret(settings.oauth_state_secret)
        query = request.query
        channel = request.app[CHANNELS][name]
        oauth = channel.provider.oauth
        if "error" in query:  # the user declined (access_denied) or the provider refused the request
            return flow.refuse(request, "consent_denied")
        try:
            state = read_state(query.get("state"), secret, domain=key)
        except StateError as exc:
            return flow.refuse(request, exc.reason)
        fields = {"tenant": str(state.tenant_id)}
        cookie = request.cookies.get(flow.cookie)
        if not cookie:
            return flow.refuse(request, "missing_cookie", **fields)
        if not browser_matches(state, cookie):
            return flow.refuse(request, "cookie_mismatch", **fields)
        code = query.get("code")
        if not code or not oauth.validate_callback(query):
            return flow.refuse(request, "invalid_callback", **fields)
        nonce_hash = digest(state.nonce)
        pool = request.app[POOL]
        # Before spending the code: is the state still open? (Only a hint: the consuming UPDATE
        # below decides, in the transaction that links.)
        async with tenant_transaction(pool, state.tenant_id, readonly=True) as conn:
            row = await conn.fetchrow(STATE_NONCE_OPEN, nonce_hash, state.browser_hash)
        if row is None:
            return flow.refuse(request, "unknown_state", **fields)
        if not row["open"]:
            return flow.refuse(request, "state_used" if row["used"] else "expired_state", **fields)
        try:
            tokens = await oauth.exchange_code(code)
            accounts = await oauth.accounts(query, tokens)
        except ReconnectRequired:
            return flow.refuse(request, "code_rejected", **fields)
        except (TimeoutError, aiohttp.ClientError, KeyError, ValueError) as exc:
            return flow.refuse(request, flow.unavailable, error=type(exc).__name__, **fields)
        if not accounts:
            return flow.refuse(request, "invalid_callback", **fields)
        refusal, refused, reconnected = None, None, False
        async with tenant_transaction(pool, state.tenant_id) as conn:
            consumed = await conn.fetchrow(CONSUME_STATE, nonce_hash, state.browser_hash)
            if consumed is None:
                refusal = "state_used"  # consumed (or expired) since the check above
            for account in accounts if consumed is not None else []:
                assert consumed is not None  # noqa: S101 - narrowed by the loop's condition
                owner = await conn.fetchval(REALM_TENANT, account, name)
                if owner is not None and owner != state.tenant_id:
                    refusal, refused = "realm_other_tenant", account  # the state stays consumed
                    break
                reconnected = reconnected or owner is not None
                try:
                    async with conn.transaction():  # a savepoint: a lost race for a new account refuses
                        linked = await channel.tokens.save(conn, account, state.tenant_id, tokens)
                except (asyncpg.UniqueViolationError, asyncpg.InsufficientPrivilegeError):
                    linked = False
                if not linked:
                    refusal, refused = "realm_other_tenant", account
                    break
                if consumed["initial_since"] is not None:
                    await conn.execute(SET_INITIAL_WATERMARK, account, consumed["initial_since"], name)
        if refusal:
            return flow.refuse(request, refusal, realm=refused or accounts[0], **fields)
        for account in accounts:
            channel.worker.request_sync(account)
            log.info(f"{key}.connected", realm=account, **fields)
        days = provider.initial_import_days
        label, noun = provider.label, provider.account_noun
        since = consumed["initial_since"] if consumed is not None else None
        if since is not None:  # the date asked for, not the default
            importing = f"Sales changed since {since.date().isoformat()} are being imported"
        elif reconnected:  # a reconnection continues where the connection left off
            importing = "Sales changed since the last sync are being imported"
        else:
            importing = f"Sales from the last {days} days are being imported"
        return flow.page(
            request,
            200,
            f"{label} connected",
            f"Your {label} {noun} is connected to Partsemble. {importing}; you can close this page "
            "and go back to Partsemble.",
            {
                "realm_id": accounts[0],
                "status": "connected",
                "initial_import_days": days,
                "since": since.date().isoformat() if since is not None else None,
            },
        )

    return routes
