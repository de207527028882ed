"""``/api/v1/connections/quickbooks``: the tenant's QuickBooks connections (API key):
list, sync now, disconnect."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from services.ingest.qbo.app_keys import QBO
from services.ingest.qbo.oauth import ReconnectRequired
from services.ingest.qbo.repository import QboRepository
from shared.db import tenant_transaction
from shared.logging import get_logger
from shared.web import POOL, TENANT, ApiError, json_response

log = get_logger("qbo.connections")
routes = web.RouteTableDef()


async def _own_connection(request: web.Request) -> asyncpg.Record:
    realm_id = request.match_info["realm_id"]
    row = None
    if realm_id.isprintable():  # a realm id the database could not even store names no connection
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
