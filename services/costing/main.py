"""Composition root of the costing service: pool, broker, topology, consumer, and
the health/metrics HTTP endpoint (port COSTING_PORT, 8083 by default)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from aiohttp import web

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


@contextlib.asynccontextmanager
async def running_consumer(settings: Settings):
    """Everything the consumer needs, started; yields (consumer, health app, topology)."""
    pool = await create_service_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    connection = await broker.connect(settings.amqp_url)
    try:
        channel = await broker.open_channel(connection, settings.costing_prefetch)
        topology = await broker.declare(channel, broker.Names(settings.broker_prefix), settings.costing_delivery_limit)
        service = CostingService(pool, settings.costing_max_attempts, settings.costing_outage_retry_seconds)
        consumer = CostingConsumer(service, topology.dead_letter_exchange, channel.default_exchange,
                                   topology.names.costing_queue, settings.costing_batch_size, settings.crash_point)
        app = web.Application()
        add_health_routes(app, {"database": database_check(pool), "broker": broker_check(connection)})
        worker = asyncio.create_task(consumer.run())
        tag = await topology.costing.consume(consumer.receive)
        try:
            yield consumer, app, topology
        finally:
            await topology.costing.cancel(tag)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    finally:
        await connection.close()
        await pool.close()


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_consumer(settings) as (_consumer, app, topology):
        runner = http_server.AppRunner(app)  # a malformed request: JSON, its bytes never logged
        await runner.setup()
        await web.TCPSite(runner, settings.bind_host, settings.costing_port).start()
        tune_garbage_collector()
        log.info("costing.started", queue=topology.names.costing_queue, port=settings.costing_port)
        await stop.wait()
        await runner.cleanup()
    log.info("costing.stopped")


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    run_guarded(lambda: asyncio.run(serve(settings)))
