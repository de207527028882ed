"""Composition root of the query service: ``create_app(settings)`` wires the
database pool, the rollup folder, the API routes and the Sales tab page (/sales). The service reads PostgreSQL (and
folds its own rollup tables); it needs no broker connection, so /readyz checks the
database alone.

With QUERY_DATABASE_URL (a streaming replica) the API's reads go to the replica
(READ_POOL, READ_GENERIC_POOL); what must see the latest writes or writes itself stays on
the primary (DATABASE_URL): API-key checks (they record last use), the event-status
endpoint (a client asks right after its write), the rollup folder and /readyz. The
replica's lag is the gauge ``query_replica_lag_seconds`` (and ``..._bytes``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from yarl import URL

from services.query import rollups
from services.query.app_keys import GENERIC_POOL, READ_GENERIC_POOL, READ_POOL, SETTINGS
from services.query.metrics import REPLICA_LAG_BYTES, REPLICA_LAG_SECONDS, metrics_middleware
from services.query.routes import routes
from services.query.sales_tab import add_sales_tab
from shared.aio import running
from shared.db import create_service_pool
from shared.health import add_health_routes, database_check
from shared.logging import get_logger
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
#: Seconds between readings of the replica's lag.
LAG_INTERVAL = 2.0
# On a standby: seconds since the last replayed transaction's commit (0 when it has
# replayed all it received), and the bytes received but not replayed yet.
REPLICA_LAG = """
SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END AS seconds,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0) AS bytes,
       pg_is_in_recovery() AS standby"""

log = get_logger("query")


def query_dsn(database_url: str, generic: bool = False) -> str:
    """The database URL with this service's session settings, and the connections say
    who they are. Statements are planned for their actual parameters (filters and
    ranges vary a lot between requests), except on the generic pool: the statements
    whose best plan does not depend on the values (views.Statement.generic: rollup
    sums, date pages, sale detail) are planned once per connection there, with no
    parallel workers: a generic plan guesses a LIMIT $n at a tenth of the rows, and on a
    page of 50 by a folded key that guess made launching two workers look cheaper than
    the 0.2 ms the page takes (5 ms a request; bench/RESULTS.md)."""
    plans = (
        {"plan_cache_mode": "force_generic_plan", "max_parallel_workers_per_gather": "0"}
        if generic
        else {"plan_cache_mode": "force_custom_plan"}
    )
    return str(URL(database_url).update_query(plans | {"application_name": "partsemble-query"}))


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


async def _read_pools_ctx(app: web.Application) -> AsyncIterator[None]:
    """The pools reads go to: QUERY_DATABASE_URL's (a replica), else the primary's, and the lag gauge."""
    settings = app[SETTINGS]
    if settings.query_database_url is None:
        app[READ_POOL], app[READ_GENERIC_POOL] = app[POOL], app[GENERIC_POOL]
        yield
        return
    url = settings.query_database_url
    read = await create_service_pool(
        query_dsn(url), settings.db_pool_min, settings.db_pool_max, reset=_nothing_to_reset
    )
    generic = await create_service_pool(
        query_dsn(url, generic=True), settings.db_pool_min, settings.db_pool_max, reset=_nothing_to_reset
    )
    app[READ_POOL], app[READ_GENERIC_POOL] = read, generic
    try:
        async with running(_watch_lag(read), name="replica-lag"):
            yield
    finally:
        await read.close()
        await generic.close()


async def read_lag(pool: asyncpg.Pool) -> tuple[float, float]:
    """The replica's lag (seconds, bytes) now, also set on the gauges; (0, 0) on a primary."""
    row = await pool.fetchrow(REPLICA_LAG)
    seconds, lag_bytes = (float(row["seconds"]), float(row["bytes"])) if row and row["standby"] else (0.0, 0.0)
    REPLICA_LAG_SECONDS.set(seconds)
    REPLICA_LAG_BYTES.set(lag_bytes)
    return seconds, lag_bytes


async def _watch_lag(pool: asyncpg.Pool) -> None:
    while True:
        try:
            await read_lag(pool)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("query.replica_lag_unavailable", error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(LAG_INTERVAL)


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
    app.cleanup_ctx.extend([_pool_ctx, _generic_pool_ctx, _read_pools_ctx, _folding_ctx])
    app.router.add_get(TENANT_PATH, tenant_info)
    app.router.add_routes(routes)
    add_sales_tab(app)
    add_health_routes(app, {"database": lambda: database_check(app[POOL])()})
    return app
