"""Composition root of the costing service: ``create_app(settings)`` wires the pool,
the broker connection and topology, and the consumer, one cleanup context each
(opened in that order, closed in reverse: the consumer stops before the broker
connection closes, the broker before the pool), and the health/metrics HTTP endpoint
(port COSTING_PORT, 8083 by default)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from services.costing.app_keys import BROKER, CHANNEL, CONSUMER, POOL, SETTINGS, TOPOLOGY
from services.costing.consumer import CostingConsumer
from services.costing.runtime import tune_garbage_collector
from services.costing.service import CostingService
from shared import broker, http_server
from shared.db import create_service_pool
from shared.health import add_health_routes, broker_check, database_check
from shared.logging import configure, get_logger
from shared.settings import Settings
from shared.startup import run_guarded

log = get_logger("costing")


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[POOL] = await create_service_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    yield
    await app[POOL].close()


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    """The broker connection, its channel (QoS: costing_prefetch) and the declared topology."""
    settings = app[SETTINGS]
    connection = await broker.connect(settings.amqp_url)
    try:
        channel = await broker.open_channel(connection, settings.costing_prefetch)
        app[TOPOLOGY] = await broker.declare(
            channel, broker.Names(settings.broker_prefix), settings.costing_delivery_limit
        )
        app[BROKER], app[CHANNEL] = connection, channel
        yield
    finally:
        await connection.close()


async def _consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The consumer's worker task and its subscription to the costing queue; on stop,
    the subscription is cancelled first (no new deliveries), then the worker."""
    settings, topology = app[SETTINGS], app[TOPOLOGY]
    service = CostingService(app[POOL], settings.costing_max_attempts, settings.costing_outage_retry_seconds)
    consumer = CostingConsumer(
        service,
        topology.dead_letter_exchange,
        app[CHANNEL].default_exchange,
        topology.names.costing_queue,
        settings.costing_batch_size,
        settings.crash_point,
    )
    app[CONSUMER] = consumer
    worker = asyncio.create_task(consumer.run(), name="costing-consumer")
    tag = await topology.costing.consume(consumer.receive)
    try:
        yield
    finally:
        await topology.costing.cancel(tag)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_pool_ctx, _broker_ctx, _consumer_ctx])
    add_health_routes(
        app, {"database": lambda: database_check(app[POOL])(), "broker": lambda: broker_check(app[BROKER])()}
    )
    return app


@contextlib.asynccontextmanager
async def running_consumer(
    settings: Settings,
) -> AsyncIterator[tuple[CostingConsumer, web.Application, broker.Topology]]:
    """For tests: ``create_app``'s resources started, without the HTTP site; yields
    (consumer, app, topology)."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        app = runner.app
        yield app[CONSUMER], app, app[TOPOLOGY]
    finally:
        await runner.cleanup()


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = http_server.AppRunner(create_app(settings))  # a malformed request: JSON, its bytes never logged
    await runner.setup()  # starts the pool, the broker and the consumer
    try:
        await web.TCPSite(runner, settings.bind_host, settings.costing_port).start()
        tune_garbage_collector()
        log.info("costing.started", queue=runner.app[TOPOLOGY].names.costing_queue, port=settings.costing_port)
        await stop.wait()
    finally:
        await runner.cleanup()  # the site first, then the consumer, the broker, the pool
    log.info("costing.stopped")


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    run_guarded(lambda: asyncio.run(serve(settings)))
