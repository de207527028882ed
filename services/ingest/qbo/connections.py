"""``/api/v1/connections/quickbooks``: the tenant's QuickBooks connections (API key):
list (with a plain-words state), sync now (a run whose summary can be read), disconnect."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp import web

from services.ingest.qbo.app_keys import QBO
from services.ingest.qbo.normalize import SALE_TYPES
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


def plain_error(error: str | None) -> str | None:
    """The last failed sync in plain words (the stored text names a library's exception)."""
    if not error:
        return None
    if error.startswith("ReconnectRequired"):
        return "QuickBooks no longer accepts this connection: connect the company again."
    if error.startswith("QboFault"):
        return "QuickBooks refused to list the latest changes; the sync is retried automatically."
    if error.startswith("QboError"):
        return "QuickBooks answered with an error; the sync is retried automatically."
    if error.startswith(("TimeoutError", "ClientConnector", "ServerDisconnected", "ClientOSError", "OSError")):
        return "QuickBooks could not be reached; the sync is retried automatically."
    return "The last sync did not complete; it is retried automatically."


def run_error(error: str | None) -> str | None:
    """Why a "sync now" run failed, in plain words (the run stores a reason code or the
    exception's type)."""
    if not error:
        return None
    return plain_error("ReconnectRequired" if error == "reconnect_required" else error)


def state(row: asyncpg.Record, syncing: bool) -> str:
    """active | syncing | needs_reconnect | disconnected."""
    if row["status"] == "disconnected":
        return "disconnected"
    if row["status"] == "reconnect_required":
        return "needs_reconnect"
    if syncing or row["cdc_watermark"] is None:  # a first import has not completed yet
        return "syncing"
    return "active"


@routes.get("/api/v1/connections/quickbooks")
async def list_connections(request: web.Request) -> web.Response:
    worker = request.app[QBO].worker
    async with tenant_transaction(request.app[POOL], request[TENANT], readonly=True) as conn:
        repo = QboRepository(conn)
        rows = await repo.connections_of(request[TENANT])
        running = {r["realm_id"] for r in rows if await repo.running(r["realm_id"])}
    items = []
    for r in rows:
        item = dict(r)
        item["state"] = state(r, r["realm_id"] in worker.syncing or r["realm_id"] in running)
        item["last_error"] = plain_error(r["last_error"])
        items.append(item)
    return json_response({"items": items})


@routes.post("/api/v1/connections/quickbooks/{realm_id}/sync")
async def sync_now(request: web.Request) -> web.Response:
    row = await _own_connection(request)
    if row["status"] != "connected":
        raise ApiError(409, "conflict", f"the connection is {row['status']}")
    run_id = uuid.uuid4()
    async with tenant_transaction(request.app[POOL], request[TENANT]) as conn:
        await QboRepository(conn).start_run(run_id, request[TENANT], row["realm_id"])
    request.app[QBO].worker.request_sync(row["realm_id"], run_id)
    return json_response({"realm_id": row["realm_id"], "status": "sync_requested", "sync_id": str(run_id)}, 202)


def _sale_keys(names: list[str]) -> list[tuple[str, str, str]]:
    keys: list[tuple[str, str, str]] = []
    for name in names:
        entity, _, entity_id = name.partition(":")
        if entity in SALE_TYPES:
            keys.append((name, SALE_TYPES[entity], entity_id))
    return keys


def _sale_ref(name: str, ids: dict[str, int]) -> dict[str, Any]:
    entity, _, entity_id = name.partition(":")
    return {"id": ids.get(name), "entity": entity, "qbo_id": entity_id, "type": SALE_TYPES.get(entity)}


@routes.get("/api/v1/connections/quickbooks/{realm_id}/syncs/{sync_id}")
async def sync_run(request: web.Request) -> web.Response:
    """What a "sync now" did: each sale as {id (the query API's, null until costed),
    entity, qbo_id, type}, how many were skipped and failed, and why it failed."""
    row = await _own_connection(request)
    try:
        run_id = uuid.UUID(request.match_info["sync_id"]) if len(request.match_info["sync_id"]) <= 45 else None
    except ValueError:
        run_id = None
    run = None
    if run_id is not None:
        async with tenant_transaction(request.app[POOL], request[TENANT], readonly=True) as conn:
            repo = QboRepository(conn)
            run = await repo.run(run_id, row["realm_id"])
            kinds = ("created", "updated", "voided", "deleted")
            ids = await repo.sale_ids(_sale_keys([n for k in kinds for n in run[k]])) if run else {}
    if run is None:
        raise ApiError(404, "not_found", f"no sync {request.match_info['sync_id']!r} of this connection")
    return json_response(
        {
            "sync_id": str(run["id"]),
            "realm_id": run["realm_id"],
            "status": run["status"],
            "started_at": run["started_at"],
            "finished_at": run["finished_at"],
            **{k: [_sale_ref(n, ids) for n in run[k]] for k in kinds},
            "skipped": run["skipped"],
            "failed": run["failed"],
            "error": run_error(run["error"]),
        }
    )


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
