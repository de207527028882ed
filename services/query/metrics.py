"""Prometheus metrics of the query service."""

import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Histogram(
    "query_request_seconds",
    "Time to answer one request, by route and status",
    ["route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5),
)

ROLLUP_DELTAS_FOLDED = Counter(
    "query_rollup_deltas_folded_total", "Rollup deltas and stale sort keys folded into their base tables"
)

REPLICA_LAG_SECONDS = Gauge(
    "query_replica_lag_seconds",
    "How far the replica of QUERY_DATABASE_URL is behind: seconds since its last replayed commit (0 when caught up)",
)
REPLICA_LAG_BYTES = Gauge("query_replica_lag_bytes", "WAL the replica has received but not replayed yet (bytes)")


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inside the error middleware: errors are counted with their final status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception as exc:
        status = getattr(exc, "status", 500)
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        REQUESTS.labels(route, str(status)).observe(time.perf_counter() - started)
