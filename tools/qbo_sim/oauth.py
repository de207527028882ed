"""OAuth 2.0 endpoints as Intuit serves them (docs/quickbooks-api.md §4), all on the simulator's origin:

- ``GET /appcenter/connect/oauth2`` — a browser (``Accept: text/html``) that names no company
  gets Intuit's consent page: pick the company, then Connect or Cancel. Given ``realm`` (the
  company, created empty if new), or not asking for HTML (a script: the demo company), consent is
  automatic: 302 to ``redirect_uri`` with ``code``, ``state`` and ``realmId``. ``deny=1`` answers
  ``error=access_denied`` instead.
- ``POST /oauth2/v1/tokens/bearer`` — HTTP Basic client auth, form body; ``authorization_code``
  and ``refresh_token`` grants; rotating refresh tokens; ``{"error":"invalid_grant"}`` 400.
- ``POST /v2/oauth2/tokens/revoke`` — JSON ``{"token": …}``; revokes the whole grant.
- ``GET /.well-known/openid_configuration`` (and ``openid_sandbox_configuration``) — the discovery
  document naming these endpoints on the simulator's origin; intuit-oauth's ``AuthClient`` reads it
  when given its URL as ``environment``.
"""

from __future__ import annotations

import html
import time
from typing import Any

from aiohttp import web

from tools.qbo_sim.simulator import SIM, Simulator
from tools.qbo_sim.tokens import OAuthError
from tools.sim_common.jsonutil import json_response
from tools.sim_common.oauth import NO_STORE, client_authenticated, oauth_error, origin, redirect

routes = web.RouteTableDef()
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"


@routes.get("/.well-known/openid_configuration")
@routes.get("/.well-known/openid_configuration/")
@routes.get("/.well-known/openid_sandbox_configuration")
@routes.get("/.well-known/openid_sandbox_configuration/")
async def discovery(request: web.Request) -> web.Response:
    base = origin(request)
    return json_response(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/appcenter/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
            "jwks_uri": f"{base}/op/v1/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": [
                "openid",
                "email",
                "profile",
                "address",
                "phone",
                ACCOUNTING_SCOPE,
                "com.intuit.quickbooks.payment",
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }
    )


@routes.get("/appcenter/connect/oauth2")
async def authorize(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    q = request.query
    if q.get("client_id") != sim.config.client_id:
        return web.Response(status=400, text="invalid client_id")
    redirect_uri = q.get("redirect_uri")
    if not redirect_uri:
        return web.Response(status=400, text="redirect_uri is required")
    state = {"state": q["state"]} if "state" in q else {}
    if q.get("response_type") != "code":
        raise redirect(redirect_uri, {"error": "unsupported_response_type", **state})
    if ACCOUNTING_SCOPE not in q.get("scope", "").split():
        raise redirect(redirect_uri, {"error": "invalid_scope", **state})
    if q.get("deny") in ("1", "true"):
        raise redirect(redirect_uri, {"error": "access_denied", **state})
    if "realm" not in q and "text/html" in request.headers.get("Accept", ""):
        return _consent_page(sim, q)
    company = sim.company_or_demo(q.get("realm"))
    code = sim.tokens.issue_code(company.realm_id, redirect_uri)
    raise redirect(redirect_uri, {"code": code, **state, "realmId": company.realm_id})


_CONSENT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect to QuickBooks (simulator)</title></head>
<body><main><h1>Partsemble wants to connect to your QuickBooks company</h1>
<form method="get" action="/appcenter/connect/oauth2">{hidden}
<label for="realm">Company</label> <select id="realm" name="realm">{options}</select>
<p>Partsemble will be able to read your sales forms and items.</p>
<button type="submit" id="approve">Connect</button>
<button type="submit" id="deny" name="deny" value="1">Cancel</button>
</form></main></body></html>
"""


def _consent_page(sim: Simulator, q: Any) -> web.Response:
    """What Intuit shows the signed-in user: which company, and Connect or Cancel. The form
    comes back here with ``realm`` (or ``deny=1``) and the request's own parameters."""
    from tools.qbo_sim.demo import DEMO_REALM_ID

    realms = [DEMO_REALM_ID, *(r for r in sim.store.companies if r != DEMO_REALM_ID)]
    keep = ("client_id", "response_type", "scope", "redirect_uri", "state")
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(q[name])}">' for name in keep if name in q
    )
    options = "".join(
        f'<option value="{html.escape(r)}">{"Demo company " if r == DEMO_REALM_ID else "Company "}'
        f"{html.escape(r)}</option>"
        for r in realms
    )
    response = web.Response(
        content_type="text/html", charset="utf-8", text=_CONSENT.format(hidden=hidden, options=options)
    )
    # No form-action: it would also govern the redirect to the app's callback (another origin).
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post("/oauth2/v1/tokens/bearer")
async def token(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    if not client_authenticated(request, sim.config.client_id, sim.config.client_secret):
        return oauth_error("invalid_client", 401)
    form = await request.post()
    grant_type = form.get("grant_type")
    try:
        if grant_type == "authorization_code":
            redirect_uri = form.get("redirect_uri")
            grant, body = sim.tokens.exchange_code(
                str(form.get("code", "")), str(redirect_uri) if redirect_uri is not None else None
            )
        elif grant_type == "refresh_token":
            grant, body = sim.tokens.refresh(str(form.get("refresh_token", "")))
            sim.stats.add(grant.realm, "token_refreshes")
        else:
            return oauth_error("unsupported_grant_type")
    except OAuthError as exc:
        if grant_type == "refresh_token" and exc.realm:
            sim.stats.add(exc.realm, "token_refreshes")
            sim.stats.add(exc.realm, "token_refresh_failures")
        return oauth_error(exc.error, exc.status)
    if request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true":
        body["x_refresh_token_hard_expires_in"] = int(grant.hard_expires - time.time())
    return json_response(body, headers=NO_STORE)


@routes.post("/v2/oauth2/tokens/revoke")
async def revoke(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    if not client_authenticated(request, sim.config.client_id, sim.config.client_secret):
        return oauth_error("invalid_client", 401)
    try:
        body = await request.json()
        token_value = body["token"]
    except (ValueError, KeyError, TypeError):
        return oauth_error("invalid_request")
    sim.tokens.revoke(str(token_value))
    return web.Response(status=200)
