"""Message outcomes of the costing consumer (aio-pika), each one deliberate:

* applied (or a duplicate): ack after the database commit (one ack per group);
* invalid, or can never succeed (a permanent error, a bug, contention beyond the
  retry limit): publish to the dead-letter exchange with the reason in ``x-error``
  (confirmed), record it, then ack; the messages behind it keep flowing;
* database unreachable beyond the retry window (``COSTING_OUTAGE_RETRY_SECONDS``):
  everything the consumer holds (the group, the rest of its batch, what has arrived
  since) is published again to the end of the queue as fresh messages (confirmed), then
  acked. Not a nack with requeue: on RabbitMQ 3.x a quorum queue counts every return as
  a delivery, so a long outage would have the broker dead-letter healthy events. And not
  one group after another, each after its own window: messages waiting that long behind
  them would reach the broker's consumer timeout (30 min), which also counts;
* a consumer that crashes mid-message: the broker redelivers; the inbox row makes
  the redelivery a no-op if the first attempt committed, and the queue's delivery
  limit dead-letters a message that crashes every consumer;
* the broker connection lost: the robust connection reconnects and consumes again;
  messages received on the closed channel are skipped, not applied (the broker has
  requeued them and redelivers them).

Messages are applied in batches: the broker delivers up to ``costing_prefetch``
unacknowledged messages; one worker takes whatever has arrived (up to
``costing_batch_size``), cuts it into groups (``service.groups``: sale events of
one tenant and distinct sales; any other event alone) and applies each group in
one transaction. A group that fails for a reason other than an unreachable
database is applied again one message at a time, so only the culprit is parked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError
from pydantic import ValidationError

from services.costing import metrics
from services.costing.service import CostingService, PermanentError, groups
from shared.broker import event_message, publish_raw, republished
from shared.db import UnavailableError, set_tenant
from shared.events import Event, parse_event
from shared.faults import crash_if
from shared.logging import get_logger

log = get_logger("costing.consumer")

RECORD_DEAD_LETTER = """
INSERT INTO dead_letters (event_id, tenant_id, routing_key, reason, body) VALUES ($1, $2, $3, $4, $5)"""

Item = tuple[AbstractIncomingMessage, Event]


#: Seconds between two INFO summaries of the consumer's work (per-event lines are DEBUG).
PROGRESS_EVERY = 10.0


class Progress:
    """Counts of what the consumer did (applied, duplicates, dead-lettered, requeued),
    logged at INFO at most every ``every`` seconds, then reset: a busy consumer writes one
    line per interval, not one per event."""

    def __init__(self, every: float = PROGRESS_EVERY, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self._clock = clock
        self._since = clock()
        self.counts: Counter[str] = Counter()

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def report(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._since < self.every:
            return
        if self.counts:
            log.info(
                "costing.progress",
                seconds=round(now - self._since, 1),
                applied=self.counts["applied"],
                duplicates=self.counts["duplicates"],
                dead_lettered=self.counts["dead_lettered"],
                requeued=self.counts["requeued"],
            )
        self.counts.clear()
        self._since = now


class _DatabaseGone(Exception):
    """The database stayed unreachable for the retry window."""


#: The event's routing key, kept by a message that went back to its queue by name.
ORIGINAL_ROUTING_KEY = "x-original-routing-key"


class CostingConsumer:
    def __init__(
        self,
        service: CostingService,
        dead_letter_exchange: AbstractExchange,
        default_exchange: AbstractExchange,
        queue_name: str,
        batch_size: int = 100,
        crash_point: str | None = None,
    ):
        self.service = service
        self.dead_letter_exchange = dead_letter_exchange
        #: Where a message goes back to the end of its queue: the default exchange routes by queue name.
        self.default_exchange = default_exchange
        self.queue_name = queue_name
        self.batch_size = batch_size
        self.crash_point = crash_point
        self.arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        #: Messages of the current batch settled by a group's single acknowledgement (aio-pika
        #: marks only the message that carried it as processed).
        self.acked: set[int] = set()
        #: Set by ``stop``: no new batch is taken.
        self.stopping = False
        #: Clear while a batch is being applied.
        self.idle = asyncio.Event()
        self.idle.set()
        #: Messages of the batch being applied.
        self.in_hand = 0
        #: Per-event lines go to DEBUG; INFO gets a summary every PROGRESS_EVERY seconds.
        self.progress = Progress()

    async def receive(self, message: AbstractIncomingMessage) -> None:
        """The broker's callback: hand the message to the worker."""
        self.arrived.put_nowait(message)

    @property
    def unsettled(self) -> int:
        """Messages delivered to this consumer and not yet settled: those waiting and the
        batch being applied (the ``costing_unacknowledged_messages`` gauge)."""
        return self.arrived.qsize() + self.in_hand

    async def run(self) -> None:
        """The worker: apply what has arrived, batch after batch, until cancelled. A batch
        that breaks off (the broker connection lost mid-ack, a bug) is logged and its
        unsettled messages are requeued; the worker goes on with the next one."""
        while not self.stopping:
            batch = [await self.arrived.get()]
            # No await between the get and here: ``stop`` sees the worker busy from now on.
            self.idle.clear()
            try:
                await self._run_batch(batch)
            finally:
                self.in_hand = 0
                self.idle.set()

    async def _run_batch(self, batch: list[AbstractIncomingMessage]) -> None:
        while len(batch) < self.batch_size and not self.arrived.empty():
            batch.append(self.arrived.get_nowait())
        self.in_hand = len(batch)
        if not (batch := _held(batch)):
            return
        self.acked.clear()
        try:
            await self.handle(batch)
        except Exception:
            log.exception("costing.batch_failed", messages=len(batch))
            for message in batch:
                if not self._settled(message):
                    with contextlib.suppress(Exception):  # a closed channel requeues them anyway
                        await message.nack(requeue=True)

    async def stop(self, worker: asyncio.Task[None]) -> None:
        """Graceful stop (the subscription is cancelled first, by the caller): the batch in
        hand is applied and acknowledged, never cancelled mid-transaction; the messages
        delivered but not started are handed back to the end of the queue as fresh
        messages (so a shutdown costs them no delivery of the queue's limit), then the
        worker is cancelled while it waits. The caller bounds the wait (SHUTDOWN_GRACE_SECONDS)."""
        self.stopping = True
        await self.idle.wait()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        held = _held(self._take_arrived())
        try:
            await self.requeue(held)
        except Exception as exc:  # the broker is gone: closing the channel returns them anyway
            log.warning("costing.hand_back_failed", error=f"{type(exc).__name__}: {exc}", messages=len(held))
        self.progress.report(force=True)
        log.info("costing.consumer_stopped", handed_back=len(held))

    async def handle(self, messages: list[AbstractIncomingMessage]) -> None:
        items: list[Item] = []
        for message in messages:
            try:
                items.append((message, parse_event(message.body)))
            except ValidationError as exc:
                await self.dead_letter(message, f"invalid event: {_summary(exc)}")
        # groups() keeps the order and only cuts it, so the items can be taken in turn.
        remaining = iter(items)
        try:
            for group in groups([event for _, event in items], self.batch_size):
                await self._apply([next(remaining) for _ in group])
        except _DatabaseGone:
            # All that is held would wait for the database too: it all goes back now.
            metrics.OUTAGES.inc()
            unsettled = [message for message, _ in items if not self._settled(message)]
            await self.requeue(unsettled + _held(self._take_arrived()))

    async def _apply(self, group: list[Item]) -> None:
        started = time.perf_counter()
        try:
            applied = await self.service.apply_group([event for _, event in group])
        except UnavailableError as exc:
            log.error("costing.database_unavailable", error=str(exc), events=len(group))
            raise _DatabaseGone from exc
        except Exception as exc:
            if len(group) > 1:
                log.warning("costing.group_failed", error=f"{type(exc).__name__}: {exc}", events=len(group))
                for item in group:
                    await self._apply([item])
                return
            message, event = group[0]
            if isinstance(exc, PermanentError):
                await self.dead_letter(message, f"cannot apply: {exc}")
            else:
                log.exception("costing.apply_failed", **_context(message))
                await self.dead_letter(message, f"failed: {type(exc).__name__}: {exc}")
            return
        crash_if("after_commit_before_ack", self.crash_point)
        debug = log.is_enabled_for(logging.DEBUG)
        # One frame acknowledges the group: messages are applied in delivery order, and all
        # delivered before the group are settled already, so "up to and including its last
        # message" is exactly the group.
        await group[-1][0].ack(multiple=True)
        self.acked.update(id(message) for message, _ in group)
        for (message, event), new in zip(group, applied, strict=True):  # one result per event
            metrics.EVENTS.labels(event.event_type, "applied" if new else "duplicate").inc()
            self.progress.count("applied" if new else "duplicates")
            if debug:
                log.debug(
                    "costing.event.applied" if new else "costing.event.duplicate",
                    event_type=event.event_type,
                    **_context(message),
                )
        self.progress.report()
        metrics.DURATION.observe(time.perf_counter() - started)
        metrics.GROUP_SIZE.observe(len(group))

    async def requeue(self, messages: list[AbstractIncomingMessage]) -> None:
        """Put messages back at the end of the queue as fresh messages (each confirmed),
        acking each original after its copy. A crash in between leaves a copy too many,
        which the inbox absorbs."""
        for message in messages:
            routing_key = _routing_key(message)
            await publish_raw(
                self.default_exchange, self.queue_name, republished(message, {ORIGINAL_ROUTING_KEY: routing_key})
            )
            await message.ack()
            self.acked.add(id(message))
            metrics.EVENTS.labels(routing_key, "requeued").inc()
            self.progress.count("requeued")

    def _settled(self, message: AbstractIncomingMessage) -> bool:
        """Acked or parked already, by itself or by its group's single acknowledgement."""
        return message.processed or id(message) in self.acked

    def _take_arrived(self) -> list[AbstractIncomingMessage]:
        """The messages delivered but not yet taken into a batch."""
        taken = []
        while not self.arrived.empty():
            taken.append(self.arrived.get_nowait())
        return taken

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Park the message with its reason (confirmed by the broker), record it, then ack."""
        headers = dict(message.headers or {})
        reason, routing_key = reason[:2000], _routing_key(message)
        headers.update({"x-error": reason, ORIGINAL_ROUTING_KEY: routing_key})
        parked = event_message(
            message.body,
            str(headers.get("event_id", "")),
            str(headers.get("tenant_id", "")),
            message.correlation_id,
            headers,
        )
        await publish_raw(self.dead_letter_exchange, routing_key or "unknown", parked)
        tenant_id = _uuid(headers.get("tenant_id"))
        try:
            # Under the message's tenant when it names one; one whose tenant cannot be read is
            # recorded without (row-level security lets only the owner see it).
            async with self.service.pool.acquire() as conn, conn.transaction():
                if tenant_id is not None:
                    await set_tenant(conn, tenant_id)
                await conn.execute(
                    RECORD_DEAD_LETTER, _uuid(headers.get("event_id")), tenant_id, routing_key, reason, message.body
                )
        except Exception:
            log.exception("costing.dead_letter_record_failed")
        await message.ack()
        metrics.DEAD_LETTERED.labels(reason.split(":", 1)[0]).inc()
        self.progress.count("dead_lettered")
        self.progress.report()
        log.error("costing.event.dead_lettered", reason=reason, **_context(message))


def _routing_key(message: AbstractIncomingMessage) -> str:
    return str((message.headers or {}).get(ORIGINAL_ROUTING_KEY) or message.routing_key or "")


def _held(messages: list[AbstractIncomingMessage]) -> list[AbstractIncomingMessage]:
    """The messages still held on an open channel. Those of a channel that closed (the
    broker connection was lost) are back in the queue already and cannot be acknowledged:
    applying them would be wasted work, so they are left to their redelivery."""
    held = [message for message in messages if _channel_open(message)]
    if len(held) < len(messages):
        log.warning("costing.deliveries_of_a_closed_channel_skipped", messages=len(messages) - len(held))
    return held


def _channel_open(message: AbstractIncomingMessage) -> bool:
    try:
        return not message.channel.is_closed
    except ChannelInvalidStateError:  # aio-pika raises once the message's channel has closed
        return False


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _context(message: AbstractIncomingMessage) -> dict[str, Any]:
    headers = message.headers or {}
    return {
        "event_id": headers.get("event_id"),
        "tenant": headers.get("tenant_id"),
        "correlation_id": message.correlation_id,
    }


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
