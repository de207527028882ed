"""OAuth 2.0 as Xero's identity service serves it (docs/xero.md §1), all on the simulator's origin:

- ``GET /identity/connect/authorize`` — validates ``response_type=code``, ``client_id``, ``redirect_uri`` and
  ``scope`` and shows a consent page: one checkbox per organisation (query ``tenant`` may name ones to offer,
  default every organisation, the demo one when there is none), Allow / Cancel. Bad ``client_id`` or
  ``redirect_uri`` get an error page, not a redirect (as Xero). ``POST`` of that form redirects to
  ``redirect_uri`` with ``code`` and ``state`` (or ``error=access_denied``). A client that cannot click can
  add ``sim_consent=allow`` (every offered organisation) or ``sim_consent=deny`` to the GET.
- ``POST /connect/token`` — HTTP Basic client auth (or ``client_id``/``client_secret`` in the form);
  ``authorization_code`` and ``refresh_token`` grants; ``{"error":"invalid_grant"}`` 400.
- ``POST /connect/revocation`` — form ``token=<refresh token>``; 200; the grant and its connections end.
- ``GET /connections`` (Bearer; ``?authEventId=`` filter) and ``DELETE /connections/{id}`` (204, 404).
- ``GET /.well-known/openid-configuration`` — the discovery document naming these endpoints.
"""

from __future__ import annotations

import html

from aiohttp import web

from tools.sim_common.jsonutil import json_response
from tools.sim_common.oauth import NO_STORE, bearer_token, client_authenticated, oauth_error, origin, redirect
from tools.xero_sim import faults
from tools.xero_sim.simulator import SIM, Simulator
from tools.xero_sim.tokens import OAuthError

routes = web.RouteTableDef()
ACCOUNTING_SCOPES = ("accounting.", "openid")


@routes.get("/.well-known/openid-configuration")
async def discovery(request: web.Request) -> web.Response:
    base = origin(request)
    return json_response(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/identity/connect/authorize",
            "token_endpoint": f"{base}/connect/token",
            "revocation_endpoint": f"{base}/connect/revocation",
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
    )


def _error_page(message: str) -> web.Response:
    return web.Response(
        status=400,
        content_type="text/html",
        text=f"<!doctype html><title>Xero | Error</title><h1>Sorry, something went wrong</h1><p>{html.escape(message)}",
    )


def _offered(sim: Simulator, request: web.Request, wanted: list[str]) -> dict[str, str]:
    from tools.xero_sim.demo import DEMO_TENANT_ID

    if not sim.store.orgs:
        sim.org(DEMO_TENANT_ID)
    orgs = sim.store.orgs
    chosen = [t for t in wanted if t in orgs] if wanted else list(orgs)
    return {tenant: orgs[tenant].name for tenant in chosen}


def _check(sim: Simulator, params: dict[str, str]) -> str | None:
    if params.get("client_id") != sim.config.client_id:
        return "unauthorized_client: Unknown client or client not enabled"
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        return "invalid_request: redirect_uri is required"
    if sim.config.redirect_uris and redirect_uri not in sim.config.redirect_uris:
        return "Invalid redirect_uri"
    return None


@routes.get("/identity/connect/authorize")
async def authorize(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    params = dict(request.query)
    problem = _check(sim, params)
    if problem:
        return _error_page(problem)
    redirect_uri = params["redirect_uri"]
    state = {"state": params["state"]} if "state" in params else {}
    if params.get("response_type") != "code":
        raise redirect(redirect_uri, {"error": "unsupported_response_type", **state})
    scopes = params.get("scope", "").split()
    if not any(s.startswith(ACCOUNTING_SCOPES) for s in scopes):
        raise redirect(redirect_uri, {"error": "invalid_scope", **state})
    offered = _offered(sim, request, request.query.getall("tenant", []))
    consent = params.get("sim_consent")
    if consent == "deny":
        raise redirect(redirect_uri, {"error": "access_denied", **state})
    if consent == "allow":
        code = sim.tokens.issue_code(offered, redirect_uri, scopes)
        raise redirect(redirect_uri, {"code": code, "scope": " ".join(scopes), **state})
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k in ("client_id", "redirect_uri", "scope", "state", "response_type")
    )
    boxes = "".join(
        f'<label><input type="checkbox" name="tenant" value="{html.escape(t)}" checked> {html.escape(n)}</label><br>'
        for t, n in offered.items()
    )
    scope_list = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
    page = (
        "<!doctype html><html><head><title>Xero | Authorise app</title></head><body>"
        "<h1>Sim App wants access to your organisations</h1>"
        f'<form method="post" action="/identity/connect/authorize">{hidden}'
        f"<fieldset><legend>Organisations</legend>{boxes}</fieldset><p>It will be able to:</p><ul>{scope_list}</ul>"
        '<button type="submit" name="decision" value="allow">Allow access</button> '
        '<button type="submit" name="decision" value="deny">Cancel</button></form></body></html>'
    )
    return web.Response(text=page, content_type="text/html")


@routes.post("/identity/connect/authorize")
async def consent(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    form = await request.post()
    params = {k: str(v) for k, v in form.items() if k != "tenant"}
    problem = _check(sim, params)
    if problem:
        return _error_page(problem)
    redirect_uri = params["redirect_uri"]
    state = {"state": params["state"]} if "state" in params else {}
    tenants = [str(t) for t in form.getall("tenant", [])]
    if params.get("decision") != "allow" or not tenants:
        raise redirect(redirect_uri, {"error": "access_denied", **state})
    offered = _offered(sim, request, tenants)
    scopes = params.get("scope", "").split()
    code = sim.tokens.issue_code(offered, redirect_uri, scopes)
    raise redirect(redirect_uri, {"code": code, "scope": " ".join(scopes), **state})


@routes.post("/connect/token")
async def token(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    form = {k: str(v) for k, v in (await request.post()).items()}
    if not client_authenticated(request, sim.config.client_id, sim.config.client_secret, form):
        return oauth_error("invalid_client")
    grant_type = form.get("grant_type")
    try:
        if grant_type == "authorization_code":
            _, body = sim.tokens.exchange_code(form.get("code", ""), form.get("redirect_uri"))
        elif grant_type == "refresh_token":
            grant, body = sim.tokens.refresh(form.get("refresh_token", ""))
            for tenant in grant.tenants:
                sim.stats.add(tenant, "token_refreshes")
        else:
            return oauth_error("unsupported_grant_type")
    except OAuthError as exc:
        for tenant in exc.tenants:
            sim.stats.add(tenant, "token_refreshes")
            sim.stats.add(tenant, "token_refresh_failures")
        return oauth_error(exc.error, exc.status)
    return json_response(body, headers=NO_STORE)


@routes.post("/connect/revocation")
async def revoke(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    form = {k: str(v) for k, v in (await request.post()).items()}
    if not client_authenticated(request, sim.config.client_id, sim.config.client_secret, form):
        return oauth_error("invalid_client")
    if "token" not in form:
        return oauth_error("invalid_request")
    sim.tokens.revoke(form["token"])
    return web.Response(status=200)


@routes.get("/connections")
@routes.get("/Connections")  # xero-python spells it so; Xero matches paths case-insensitively
async def connections(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    grant, verdict = sim.tokens.grant_for_access(bearer_token(request) or "")
    if grant is None or verdict != "ok":
        return faults.unauthorized("TokenExpired: token expired" if verdict == "expired" else "Unauthorized")
    event = request.query.get("authEventId")
    out = [c.render() for c in grant.connections.values() if event is None or c.auth_event_id == event]
    return json_response(out)


@routes.delete("/connections/{id}")
@routes.delete("/Connections/{id}")
async def disconnect(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    grant, verdict = sim.tokens.grant_for_access(bearer_token(request) or "")
    if grant is None or verdict != "ok":
        return faults.unauthorized("Unauthorized")
    if not sim.tokens.disconnect(grant, request.match_info["id"]):
        return web.Response(status=404)
    return web.Response(status=204)
