"""The tenant's channel connections (API key). ``GET /api/v1/connections``: every
provider's. Per provider, ``/api/v1/connections/<name>`` (``quickbooks``: a contract of the
Sales tab and of clients): list (with a plain-words state), sync now (a run whose summary
can be read), disconnect."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp import web

from services.ingest.channels.channel import CHANNELS, Channel
from services.ingest.channels.provider import ReconnectRequired, SalesChannelProvider
from services.ingest.channels.repository import ChannelRepository
from shared.db import tenant_transaction
from shared.logging import get_logger
from shared.web import POOL, TENANT, ApiError, json_response

log = get_logger("channels.connections")
routes = web.RouteTableDef()


def plain_error(provider: SalesChannelProvider, error: str | None) -> str | None:
    """The last failed sync in plain words (the stored text names a library's exception)."""
    if not error:
        return None
    label = provider.label
    if error.startswith("ReconnectRequired"):
        return f"{label} no longer accepts this connection: connect the {provider.account_noun} again."
    known = provider.plain_error(error)
    if known is not None:
        return known
    if error.startswith(("TimeoutError", "ClientConnector", "ServerDisconnected", "ClientOSError", "OSError")):
        return f"{label} could not be reached; the sync is retried automatically."
    return "The last sync did not complete; it is retried automatically."


def run_error(provider: SalesChannelProvider, error: str | None) -> str | None:
    """Why a "sync now" run failed, in plain words (the run stores a reason code or the
    exception's type)."""
    if not error:
        return None
    return plain_error(provider, "ReconnectRequired" if error == "reconnect_required" else error)


def state(row: asyncpg.Record, syncing: bool) -> str:
    """active | syncing | needs_reconnect | disconnected."""
    if row["status"] == "disconnected":
        return "disconnected"
    if row["status"] == "reconnect_required":
        return "needs_reconnect"
    if syncing or row["cdc_watermark"] is None:  # a first import has not completed yet
        return "syncing"
    return "active"


async def _items(request: web.Request, channels: list[Channel], with_provider: bool) -> list[dict[str, Any]]:
    items = []
    async with tenant_transaction(request.app[POOL], request[TENANT], readonly=True) as conn:
        for channel in channels:
            repo = ChannelRepository(conn, channel.provider.name)
            for r in await repo.connections_of(request[TENANT]):
                running = await repo.running(r["realm_id"])
                item = dict(r)
                if not with_provider:
                    del item["provider"]
                item["state"] = state(r, r["realm_id"] in channel.worker.syncing or running)
                item["last_error"] = plain_error(channel.provider, r["last_error"])
                items.append(item)
    return items


@routes.get("/api/v1/connections")
async def list_all_connections(request: web.Request) -> web.Response:
    """Every provider's connections of the tenant, each with its ``provider``."""
    return json_response({"items": await _items(request, [*request.app[CHANNELS]], with_provider=True)})


def connection_routes(provider: SalesChannelProvider) -> web.RouteTableDef:
    """``/api/v1/connections/<provider.name>`` and its sub-paths."""
    routes = web.RouteTableDef()
    name = provider.name
    base = f"/api/v1/connections/{name}"
    #: The field naming the provider's own id of a sale in a sync run ("qbo_id": the contract).
    id_field = "qbo_id" if provider.key == "qbo" else "external_id"
    log = get_logger(f"{provider.key}.connections")

    async def _own_connection(request: web.Request) -> asyncpg.Record:
        realm_id = request.match_info["realm_id"]
        row = None
        if realm_id.isprintable():  # a realm id the database could not even store names no connection
            async with tenant_transaction(request.app[POOL], request[TENANT], readonly=True) as conn:
                row = await ChannelRepository(conn, name).connection(realm_id)
        if row is None or row["tenant_id"] != request[TENANT]:
            raise ApiError(404, "not_found", f"no {provider.label} connection {realm_id!r}")
        return row

    @routes.get(base)
    async def list_connections(request: web.Request) -> web.Response:
        return json_response({"items": await _items(request, [request.app[CHANNELS][name]], with_provider=False)})

    @routes.post(base + "/{realm_id}/sync")
    async def sync_now(request: web.Request) -> web.Response:
        row = await _own_connection(request)
        if row["status"] != "connected":
            raise ApiError(409, "conflict", f"the connection is {row['status']}")
        run_id = uuid.uuid4()
        async with tenant_transaction(request.app[POOL], request[TENANT]) as conn:
            await ChannelRepository(conn, name).start_run(run_id, request[TENANT], row["realm_id"])
        request.app[CHANNELS][name].worker.request_sync(row["realm_id"], run_id)
        return json_response({"realm_id": row["realm_id"], "status": "sync_requested", "sync_id": str(run_id)}, 202)

    def _sale_keys(names: list[str]) -> list[tuple[str, str, str]]:
        keys: list[tuple[str, str, str]] = []
        for key in names:
            entity, _, entity_id = key.partition(":")
            if entity in provider.sales_entities:
                keys.append((key, provider.sale_type(entity), entity_id))
        return keys

    def _sale_ref(key: str, ids: dict[str, int]) -> dict[str, Any]:
        entity, _, entity_id = key.partition(":")
        sale_type = provider.sale_type(entity) if entity in provider.sales_entities else None
        return {"id": ids.get(key), "entity": entity, id_field: entity_id, "type": sale_type}

    @routes.get(base + "/{realm_id}/syncs/{sync_id}")
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
                repo = ChannelRepository(conn, name)
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
                "error": run_error(provider, run["error"]),
            }
        )

    @routes.post(base + "/{realm_id}/disconnect")
    async def disconnect(request: web.Request) -> web.Response:
        row = await _own_connection(request)
        channel = request.app[CHANNELS][name]
        try:
            await channel.provider.oauth.revoke(channel.tokens.cipher.decrypt(row["refresh_token"], row["realm_id"]))
        except (ReconnectRequired, OSError) as exc:
            log.warning(f"{provider.key}.revoke_failed", error=str(exc))
        async with tenant_transaction(request.app[POOL], request[TENANT]) as conn:
            await ChannelRepository(conn, name).set_status(row["realm_id"], "disconnected")
        return json_response({"realm_id": row["realm_id"], "status": "disconnected"})

    return routes
