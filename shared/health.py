"""/healthz, /readyz and Prometheus /metrics for every service (aiohttp)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aio_pika.abc
import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[None]]


def add_health_routes(app: web.Application, checks: dict[str, ReadinessCheck]) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        results = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=2.0)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        return web.json_response(
            {"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503
        )

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def database_check(pool: asyncpg.Pool) -> ReadinessCheck:
    async def check() -> None:
        await pool.fetchval("SELECT 1")

    return check


def broker_check(connection: aio_pika.abc.AbstractConnection) -> ReadinessCheck:
    async def check() -> None:
        if connection.is_closed:
            raise ConnectionError("broker connection closed")

    return check
