"""Composition root of the query service: ``create_app(settings)`` wires the
database pool, the rollup folder, the API routes and the Sales tab page (/sales). The service reads PostgreSQL (and
folds its own rollup tables); it needs no broker connection, so /readyz checks the
database alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from yarl import URL

from services.query import rollups
from services.query.app_keys import GENERIC_POOL, SETTINGS
from services.query.metrics import metrics_middleware
from services.query.routes import routes
from services.query.sales_tab import add_sales_tab
from shared.db import create_service_pool
from shared.health import add_health_routes, database_check
from shared.openapi import DOCUMENT_PATH
from shared.plans import TENANT_PATH, sales_tracking_gate, tenant_info
from shared.settings import Settings
from shared.web import POOL, auth_middleware, error_middleware

#: Served without an API key: the API's description holds no tenant data.
PUBLIC_PATHS = frozenset({DOCUMENT_PATH})
#: Always allowed with a valid key, whatever the plan.
UNGATED_PATHS = frozenset({DOCUMENT_PATH, TENANT_PATH})


def is_sales_tracking(request: web.Request) -> bool:
    """Every query endpoint but the tenant and the OpenAPI document is sales tracking."""
    return request.path.startswith("/api/v1/") and request.path not in UNGATED_PATHS


#: HTTP server limits (aiohttp request handler arguments). A request line may be long:
#: several text filters of up to 200 characters, percent-encoded, and a cursor.
SERVER_LIMITS = {"max_line_size": 65536}


def query_dsn(database_url: str, generic: bool = False) -> str:
    """The database URL with this service's session settings, and the connections say
    who they are. Statements are planned for their actual parameters (filters and
    ranges vary a lot between requests), except on the generic pool: the statements
    whose best plan does not depend on the values (views.Statement.generic: rollup
    sums, date pages, sale detail) are planned once per connection there."""
    mode = "force_generic_plan" if generic else "force_custom_plan"
    return str(URL(database_url).update_query(plan_cache_mode=mode, application_name="partsemble-query"))


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    """A released connection of this service keeps no session state (no SET, LISTEN,
    cursors or session advisory locks; asyncpg still rolls back an open transaction),
    so it skips asyncpg's reset query: one round trip less per request."""


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """Connections that plan every statement for its values."""
    settings = app[SETTINGS]
    app[POOL] = await create_service_pool(
        query_dsn(settings.database_url), settings.db_pool_min, settings.db_pool_max, reset=_nothing_to_reset
    )
    yield
    await app[POOL].close()


async def _generic_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """Connections whose prepared statements run generic plans (views.Statement.generic)."""
    settings = app[SETTINGS]
    app[GENERIC_POOL] = await create_service_pool(
        query_dsn(settings.database_url, generic=True),
        settings.db_pool_min,
        settings.db_pool_max,
        reset=_nothing_to_reset,
    )
    yield
    await app[GENERIC_POOL].close()


async def _folding_ctx(app: web.Application) -> AsyncIterator[None]:
    """Folds the rollup deltas written by the triggers into their base tables."""
    async with rollups.folding(app[POOL]):
        yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            error_middleware,
            auth_middleware(settings=settings, public_paths=PUBLIC_PATHS),
            sales_tracking_gate(is_sales_tracking),
            metrics_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_pool_ctx, _generic_pool_ctx, _folding_ctx])
    app.router.add_get(TENANT_PATH, tenant_info)
    app.router.add_routes(routes)
    add_sales_tab(app)
    add_health_routes(app, {"database": lambda: database_check(app[POOL])()})
    return app
