"""The outbox relay: publishes logged events to RabbitMQ in log order, with
publisher confirms, and deletes an outbox row only after the broker confirmed it.

While the broker is unreachable, writes are still accepted (they wait in the
outbox) and the relay keeps reconnecting; nothing is published that is not in
the log. A crash between publish and delete republishes the row later; the
costing inbox absorbs the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
import asyncpg
from prometheus_client import Counter, Gauge

from services.ingest.repository import OutboxRepository
from shared import broker
from shared.aio import Backoff, wake_loop
from shared.faults import crash_if
from shared.logging import get_logger

log = get_logger("ingest.relay")

PUBLISHED = Counter("ingest_outbox_published_total", "Events confirmed by the broker")
FAILED = Counter("ingest_outbox_publish_failures_total", "Publish attempts that were not confirmed")
PENDING = Gauge("ingest_outbox_pending", "Events waiting in the outbox")
OLDEST = Gauge("ingest_outbox_oldest_age_seconds", "Age of the oldest event waiting in the outbox (0 when empty)")


#: Messages published at once, their confirms awaited together (a batch claims up to 200).
PUBLISH_CHUNK = 25


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        amqp_url: str,
        names: broker.Names,
        delivery_limit: int,
        batch: int = 200,
        publish_timeout: float = 10.0,
        crash_point: str | None = None,
    ):
        self.pool = pool
        self.amqp_url = amqp_url
        self.names = names
        self.delivery_limit = delivery_limit
        self.batch = batch
        self.publish_timeout = publish_timeout
        self.crash_point = crash_point
        self.wake = asyncio.Event()
        #: Seconds between refreshes of the outbox gauges (also while the broker is down).
        self.report_every = 5.0
        self._reported_at = float("-inf")
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        #: Set by ``stop``: no new batch is claimed.
        self.stopping = False
        #: Clear while a step (a batch claimed, published, marked sent) is under way.
        self._idle = asyncio.Event()
        self._idle.set()

    def notify(self) -> None:
        self.wake.set()

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed

    async def _ensure_exchange(self) -> aio_pika.abc.AbstractExchange:
        """The exchange on a live connection; a fresh connection after any failure."""
        if self._exchange is None or not self.connected:
            await self._drop_connection()
            self.connection = await broker.connect(self.amqp_url, robust=False)
            channel = await broker.open_channel(self.connection)
            self._exchange = (await broker.declare(channel, self.names, self.delivery_limit)).exchange
        return self._exchange

    async def _drop_connection(self) -> None:
        connection, self.connection, self._exchange = self.connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)

    async def run(self) -> None:
        """Publish until cancelled; sleep until notified (or 1 s) when the outbox is empty.
        While the broker or the database is down: retry after 0.1 s, doubled up to 5 s."""
        await wake_loop(self._step, self.wake, idle_timeout=1.0, backoff=Backoff(0.1, 5.0), on_error=self._unavailable)

    async def _step(self) -> bool:
        if self.stopping:
            return False
        self._idle.clear()
        try:
            await self._report()
            await self._ensure_exchange()
            return await self.publish_pending() > 0
        finally:
            self._idle.set()

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Graceful stop of the ``run`` task: the batch being published is finished (its
        confirmed rows deleted, the rest kept), then the loop is cancelled while it waits.
        The caller bounds the wait (SHUTDOWN_GRACE_SECONDS); cancelling mid-batch instead
        rolls the claim back and republishes its confirmed rows later (duplicates the
        costing inbox absorbs)."""
        self.stopping = True
        self.wake.set()
        await self._idle.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("relay.stopped")

    async def _unavailable(self, exc: Exception, retry_in: float) -> None:
        """Broker or database down: keep the rows, drop the connection, retry."""
        log.warning("relay.unavailable", error=f"{type(exc).__name__}: {exc}", retry_in=retry_in)
        await self._drop_connection()

    async def _report(self) -> None:
        """Refresh the outbox gauges when due; a database that cannot answer leaves them be."""
        now = asyncio.get_running_loop().time()
        if now - self._reported_at < self.report_every:
            return
        self._reported_at = now
        try:
            async with self.pool.acquire() as conn:
                stats = await OutboxRepository(conn).stats()
        except Exception as exc:
            log.warning("relay.stats_unavailable", error=f"{type(exc).__name__}: {exc}")
            return
        PENDING.set(stats["pending"])
        OLDEST.set(stats["age"])

    async def publish_pending(self) -> int:
        """Publish one batch of outbox rows; returns how many were confirmed."""
        async with self.pool.acquire() as conn, conn.transaction():
            outbox = OutboxRepository(conn)
            rows = await outbox.claim(self.batch)
            if not rows:
                PENDING.set(0)
                return 0
            exchange = await self._ensure_exchange()
            results: list[BaseException | None] = []
            # In chunks: the messages of a chunk are built and sent in one go, which holds the
            # event loop (the requests this process serves wait); between chunks it serves them.
            for start in range(0, len(rows), PUBLISH_CHUNK):
                chunk = rows[start : start + PUBLISH_CHUNK]
                results += await asyncio.gather(*(self._publish(exchange, r) for r in chunk), return_exceptions=True)
            # gather returns one result per row.
            sent = [r["seq"] for r, res in zip(rows, results, strict=True) if res is None]
            failed = [(r["seq"], res) for r, res in zip(rows, results, strict=True) if res is not None]
            crash_if("after_publish_before_mark_sent", self.crash_point)
            await outbox.sent(sent)
            if failed:
                await outbox.failed([seq for seq, _ in failed], f"{type(failed[0][1]).__name__}: {failed[0][1]}")
        PUBLISHED.inc(len(sent))
        if failed:
            FAILED.inc(len(failed))
            raise failed[0][1]
        return len(sent)

    async def _publish(self, exchange: aio_pika.abc.AbstractExchange, row: asyncpg.Record) -> None:
        message = broker.event_message(
            bytes(row["body"]), str(row["event_id"]), str(row["tenant_id"]), row["correlation_id"]
        )
        await broker.publish_raw(exchange, row["event_type"], message, self.publish_timeout)

    async def close(self) -> None:
        await self._drop_connection()
