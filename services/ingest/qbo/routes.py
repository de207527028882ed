"""HTTP edge of the QuickBooks channel.

* ``POST /webhooks/quickbooks``: signature first (401, nothing stored), then store
  the raw delivery and its notifications in one transaction and answer 200 at
  once; a signed body we cannot read is kept raw, counted, logged and still
  answered 200 (an error would make Intuit retry it for hours and hold back the
  deliveries behind it).
* ``GET /oauth/quickbooks/connect`` (API key) → Intuit's authorize URL with a
  signed state; ``GET /oauth/quickbooks/callback`` links the realm to the tenant.
* ``/api/v1/connections/quickbooks``: list, sync now, disconnect.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from prometheus_client import Counter

from services.ingest.app_keys import QBO, SETTINGS
from services.ingest.qbo.deliveries import DeliveryError, parse_delivery
from services.ingest.qbo.oauth import ReconnectRequired
from services.ingest.qbo.repository import QboRepository
from services.ingest.qbo.signature import verify
from services.ingest.qbo.state import make_state, read_state
from shared.api_keys import tenant_for_key
from shared.db import tenant_transaction
from shared.logging import get_logger
from shared.web import POOL, TENANT, ApiError, json_response

log = get_logger("qbo.webhook")
routes = web.RouteTableDef()
WEBHOOKS = Counter("qbo_webhook_deliveries_total", "Webhook deliveries by outcome", ["outcome"])
SCOPE = "com.intuit.quickbooks.accounting"


@routes.post("/webhooks/quickbooks")
async def webhook(request: web.Request) -> web.Response:
    body = await request.read()
    if not verify(body, request.headers.get("intuit-signature"), request.app[SETTINGS].qbo_webhook_verifier_token):
        WEBHOOKS.labels("bad_signature").inc()
        raise ApiError(401, "bad_signature", "missing or wrong intuit-signature")
    try:
        notifications, error = parse_delivery(body), None
    except DeliveryError as exc:
        notifications, error = [], str(exc)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        stored = await QboRepository(conn).store_delivery(request.content_type, body, error, notifications)
    if error:
        WEBHOOKS.labels("unparseable").inc()
        log.error("qbo.webhook.unparseable", error=error, size=len(body))
    else:
        WEBHOOKS.labels("stored").inc()
    for row in stored:
        if row["status"] == "ignored":
            log.warning("qbo.webhook.unknown_realm", realm=row["realm_id"])
    if any(row["status"] == "pending" for row in stored):
        request.app[QBO].worker.notify()
    return json_response({"received": len(notifications), "new": len(stored)})


@routes.get("/oauth/quickbooks/connect")
async def connect(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    tenant = await tenant_for_key(request.app[POOL], key.strip()) if scheme.lower() == "bearer" else None
    if tenant is None:
        raise ApiError(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")
    query = urlencode({"client_id": settings.qbo_client_id or "", "response_type": "code", "scope": SCOPE,
                       "redirect_uri": settings.qbo_redirect_uri,
                       "state": make_state(tenant, settings.oauth_state_secret)})
    raise web.HTTPFound(f"{settings.qbo_oauth_authorize_url}?{query}")


@routes.get("/oauth/quickbooks/callback")
async def callback(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    tenant = read_state(request.query.get("state", ""), settings.oauth_state_secret)
    code, realm_id = request.query.get("code"), request.query.get("realmId")
    if tenant is None:
        raise ApiError(400, "invalid_state", "the state is missing, forged or expired; start again from /connect")
    if not code or not realm_id:
        raise ApiError(400, "invalid_callback", request.query.get("error", "code and realmId are required"))
    qbo = request.app[QBO]
    tokens = await qbo.oauth.exchange_code(code)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if not await qbo.tokens.save(conn, realm_id, tenant, tokens):
            raise ApiError(409, "conflict", f"realm {realm_id} is connected to another tenant")
    qbo.worker.request_sync(realm_id)
    log.info("qbo.connected", realm=realm_id, tenant=str(tenant))
    return json_response({"realm_id": realm_id, "status": "connected",
                          "initial_import_days": settings.qbo_initial_import_days})


async def _own_connection(request: web.Request):
    realm_id = request.match_info["realm_id"]
    async with tenant_transaction(request.app[POOL], request[TENANT], readonly=True) as conn:
        row = await QboRepository(conn).connection(realm_id)
    if row is None or row["tenant_id"] != request[TENANT]:
        raise ApiError(404, "not_found", f"no QuickBooks connection {realm_id!r}")
    return row


@routes.get("/api/v1/connections/quickbooks")
async def list_connections(request: web.Request) -> web.Response:
    async with tenant_transaction(request.app[POOL], request[TENANT], readonly=True) as conn:
        rows = await QboRepository(conn).connections_of(request[TENANT])
    return json_response({"items": [dict(r) for r in rows]})


@routes.post("/api/v1/connections/quickbooks/{realm_id}/sync")
async def sync_now(request: web.Request) -> web.Response:
    row = await _own_connection(request)
    if row["status"] != "connected":
        raise ApiError(409, "conflict", f"the connection is {row['status']}")
    request.app[QBO].worker.request_sync(row["realm_id"])
    return json_response({"realm_id": row["realm_id"], "status": "sync_requested"}, 202)


@routes.post("/api/v1/connections/quickbooks/{realm_id}/disconnect")
async def disconnect(request: web.Request) -> web.Response:
    row = await _own_connection(request)
    qbo = request.app[QBO]
    try:
        await qbo.oauth.revoke(qbo.tokens.cipher.decrypt(row["refresh_token"], row["realm_id"]))
    except (ReconnectRequired, OSError) as exc:
        log.warning("qbo.revoke_failed", error=str(exc))
    async with tenant_transaction(request.app[POOL], request[TENANT]) as conn:
        await QboRepository(conn).set_status(row["realm_id"], "disconnected")
    return json_response({"realm_id": row["realm_id"], "status": "disconnected"})
