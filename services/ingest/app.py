"""Composition root of the ingest service: ``create_app(settings)`` wires the pool,
the outbox relay, the sales channels and the routes; each resource has one cleanup
context. Ingest's core (routes, service, repository, relay) knows nothing of the
channels: this module alone imports both and plugs each provider into the one channel
pipeline (``services/ingest/channels``, docs/channels.md). To add a provider: build its
``Channel`` in ``_channels_ctx`` and add its routes in ``create_app``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from services.ingest import service as uc
from services.ingest.app_keys import GROUP_COMMIT, RELAY, SERVICE, SETTINGS
from services.ingest.channels import connections as channel_connections
from services.ingest.channels.channel import CHANNELS, Channels
from services.ingest.channels.sync import RemapOnCatalogChange
from services.ingest.group_commit import SaleGroupCommit
from services.ingest.qbo import connect, connections, webhook
from services.ingest.qbo.app_keys import QBO
from services.ingest.qbo.channel import QboChannel
from services.ingest.qbo.provider import QuickBooksProvider
from services.ingest.relay import OutboxRelay
from services.ingest.routes import routes
from services.ingest.service import IngestService
from services.ingest.xero.app_keys import XERO
from services.ingest.xero.channel import XeroChannel
from services.ingest.xero.provider import XeroProvider
from services.ingest.xero.routes import xero_routes
from shared import broker
from shared.aio import running
from shared.cors import cors_middleware, parse_origins
from shared.db import create_service_pool
from shared.health import add_health_routes, database_check
from shared.openapi import DOCUMENT_PATH
from shared.plans import TENANT_PATH, sales_tracking_gate, tenant_info
from shared.secrets import state_secret, token_keys
from shared.settings import Settings
from shared.web import POOL, auth_middleware, error_middleware

#: Served without an API key: the API's description holds no tenant data.
PUBLIC_PATHS = frozenset({DOCUMENT_PATH})
#: The connect flow's path: its cookie binds the browser, so a CORS request may carry it.
CREDENTIALED_PATHS = frozenset({connect.CONNECT_PATH, "/oauth/xero/connect"})


def is_sales_tracking(request: web.Request) -> bool:
    """The ingest endpoints of sales tracking (shared/plans.py): manual sales and the
    channel connections of every provider (the connect flow checks the entitlement itself)."""
    path = request.path
    return path in ("/api/v1/sales", "/api/v1/connections") or path.startswith(
        ("/api/v1/sales/", "/api/v1/connections/")
    )


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[POOL] = await create_service_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    yield
    await app[POOL].close()


async def _relay_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    relay = OutboxRelay(
        app[POOL],
        settings.amqp_url,
        broker.Names(settings.broker_prefix),
        settings.costing_delivery_limit,
        crash_point=settings.crash_point,
    )
    app[RELAY] = relay
    # The channels listen to catalog changes (they re-emit the sales they re-map), every provider's.
    listener = RemapOnCatalogChange([QuickBooksProvider(settings), XeroProvider(settings)])
    service = IngestService(app[POOL], on_commit=relay.notify, catalog_listeners=[listener])
    app[SERVICE] = service
    # New sales without an Idempotency-Key: concurrent ones of a tenant share a transaction.
    app[GROUP_COMMIT] = SaleGroupCommit(
        service, lambda tenant, body: service.write(tenant, None, b"", uc.create_sale(body))
    )
    task = asyncio.create_task(relay.run(), name="outbox-relay")
    try:
        yield
    finally:
        await relay.stop(task)  # the batch in hand is published and marked sent first
        await relay.close()


async def _channels_ctx(app: web.Application) -> AsyncIterator[None]:
    qbo = QboChannel.build(app[POOL], app[SETTINGS], on_events=app[RELAY].notify)
    app[QBO] = qbo
    xero = XeroChannel.build(app[POOL], app[SETTINGS], on_events=app[RELAY].notify)
    app[XERO] = xero
    channels = app[CHANNELS]
    channels.add(qbo)
    channels.add(xero)
    try:
        async with contextlib.AsyncExitStack() as workers:
            for channel in channels:
                await workers.enter_async_context(running(channel.worker.run(), name=f"{channel.provider.key}-worker"))
            yield
    finally:
        for channel in channels:
            await channel.close()


def create_app(settings: Settings) -> web.Application:
    """Refuses (StartupError) before anything starts when a required secret is missing."""
    token_keys(settings.token_encryption_key, settings.token_encryption_old_keys)
    state_secret(settings.oauth_state_secret)
    app = web.Application(
        middlewares=[
            cors_middleware(parse_origins(settings.cors_allowed_origins), CREDENTIALED_PATHS),
            error_middleware,
            auth_middleware(settings=settings, public_paths=PUBLIC_PATHS),
            sales_tracking_gate(is_sales_tracking),
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CHANNELS] = Channels()
    app.cleanup_ctx.extend([_pool_ctx, _relay_ctx, _channels_ctx])
    app.router.add_routes(routes)
    app.router.add_get(TENANT_PATH, tenant_info)
    app.router.add_routes(channel_connections.routes)  # GET /api/v1/connections: every provider's
    for qbo_routes in (
        webhook.routes,
        connect.routes,
        connect.flow_routes(settings.qbo_redirect_uri),
        connections.routes,
    ):
        app.router.add_routes(qbo_routes)
    for routes_ in xero_routes(settings.xero_redirect_uri):
        app.router.add_routes(routes_)

    async def broker_ready() -> None:
        if not app[RELAY].connected:
            raise ConnectionError("not connected to the broker")

    add_health_routes(app, {"database": lambda: database_check(app[POOL])(), "broker": broker_ready})
    return app
