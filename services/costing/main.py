"""Composition root of the costing service: ``create_app(settings)`` wires the pool,
the broker connection and topology, and the consumer, one cleanup context each
(opened in that order, closed in reverse: the consumer stops before the broker
connection closes, the broker before the pool), and the health/metrics HTTP endpoint
(port COSTING_PORT, 8083 by default)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from services.costing import metrics
from services.costing.app_keys import BROKER, BROKER_STATS, CHANNEL, CONSUMER, CONSUMER_TAG, POOL, SETTINGS, TOPOLOGY
from services.costing.consumer import CostingConsumer
from services.costing.runtime import tune_garbage_collector
from services.costing.service import CostingService
from shared import broker, shutdown
from shared.aio import run as run_loop
from shared.aio import running
from shared.db import create_service_pool
from shared.health import ReadinessCheck, add_health_routes, broker_check, database_check
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
    """The consumer's worker task and its subscription to the costing queue. On stop, the
    subscription is cancelled first (no new deliveries), then the worker finishes the batch
    in hand and hands back what it had not started (``CostingConsumer.stop``; the whole
    shutdown is bounded by SHUTDOWN_GRACE_SECONDS)."""
    settings, topology = app[SETTINGS], app[TOPOLOGY]
    service = CostingService(
        app[POOL], settings.costing_max_attempts, settings.costing_outage_retry_seconds, settings.crash_point
    )
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
    app[CONSUMER_TAG] = await topology.costing.consume(consumer.receive)
    try:
        yield
    finally:
        consumer.stopping = True
        metrics.CONSUMING.set(0)
        try:
            await topology.costing.cancel(app[CONSUMER_TAG])
        except Exception as exc:  # the broker is gone: nothing more is delivered anyway
            log.warning("costing.cancel_failed", error=f"{type(exc).__name__}: {exc}")
        await consumer.stop(worker)


async def _broker_stats_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reads the queues' counts from the broker every COSTING_BROKER_STATS_SECONDS into the
    /metrics gauges (consumers per queue, ready messages, dead-letter depth); the latest
    reading also tells /readyz whether the broker counts any consumer on the costing queue."""
    settings, topology = app[SETTINGS], app[TOPOLOGY]
    names = topology.names
    app[BROKER_STATS] = {}

    async def read() -> None:
        channel = await app[BROKER].channel()
        try:
            underlay = await channel.get_underlay_channel()
            for queue in (names.costing_queue, names.dead_letter_queue):
                declared = await underlay.queue_declare(queue, passive=True)
                app[BROKER_STATS][queue] = (declared.consumer_count or 0, declared.message_count or 0)
        finally:
            await channel.close()

    async def keep_reading() -> None:
        while True:
            try:
                await asyncio.wait_for(read(), timeout=10)
            except Exception as exc:
                app[BROKER_STATS].clear()  # unknown, not stale
                log.warning("costing.broker_stats_unavailable", error=f"{type(exc).__name__}: {exc}")
            for queue, (consumers, ready) in app[BROKER_STATS].items():
                metrics.QUEUE_CONSUMERS.labels(queue).set(consumers)
                metrics.QUEUE_READY.labels(queue).set(ready)
            if names.dead_letter_queue in app[BROKER_STATS]:
                metrics.DEAD_LETTER_DEPTH.set(app[BROKER_STATS][names.dead_letter_queue][1])
            consumer = app[CONSUMER]
            metrics.UNACKNOWLEDGED.set(consumer.unsettled)
            metrics.CONSUMING.set(0 if consumer.stopping else 1)
            await asyncio.sleep(settings.costing_broker_stats_seconds)

    async with running(keep_reading(), name="broker-stats"):
        yield


def consumer_check(app: web.Application) -> ReadinessCheck:
    """Ready only while this process consumes its queue: not stopping, the channel open, the
    subscription live on it (the broker may cancel it, e.g. when the queue is deleted), and
    the broker's latest count of the queue's consumers not zero."""

    async def check() -> None:
        consumer, channel, tag = app[CONSUMER], app[CHANNEL], app[CONSUMER_TAG]
        if consumer.stopping:
            raise ConnectionError("the consumer is stopping")
        if channel.is_closed:
            raise ConnectionError("the consumer's channel is closed")
        live: dict[str, object] = getattr(await channel.get_underlay_channel(), "consumers", {})  # aiormq's
        if tag not in live:
            raise ConnectionError("the subscription to the costing queue was cancelled")
        queue = app[TOPOLOGY].names.costing_queue
        if app[BROKER_STATS].get(queue, (1, 0))[0] == 0:
            raise ConnectionError("the broker counts no consumer on the costing queue")

    return check


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_pool_ctx, _broker_ctx, _consumer_ctx, _broker_stats_ctx])
    add_health_routes(
        app,
        {
            "database": lambda: database_check(app[POOL])(),
            "broker": lambda: broker_check(app[BROKER])(),
            "consumer": consumer_check(app),
        },
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
    def started(runner: web.AppRunner) -> None:
        tune_garbage_collector()
        log.info("costing.started", queue=runner.app[TOPOLOGY].names.costing_queue, port=settings.costing_port)

    # SIGTERM: the site, then the consumer (its batch finished), the broker, the pool (shared.shutdown).
    await shutdown.serve(
        create_app(settings), settings.bind_host, settings.costing_port, settings.shutdown_grace_seconds, started
    )
    log.info("costing.stopped")


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    run_guarded(lambda: run_loop(serve(settings)))
