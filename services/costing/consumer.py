"""Message outcomes of the costing consumer (aio-pika), each one deliberate:

* applied (or a duplicate): ack after the database commit;
* invalid, or can never succeed (a permanent error, a bug, contention beyond the
  retry limit): publish to the dead-letter exchange with the reason in ``x-error``
  (confirmed), record it, then ack; the messages behind it keep flowing;
* database unreachable beyond the retry window: nack and requeue, nothing lost;
* a consumer that crashes mid-message: the broker redelivers; the inbox row makes
  the redelivery a no-op if the first attempt committed, and the queue's delivery
  limit dead-letters a message that crashes every consumer.
"""

from __future__ import annotations

import time
import uuid

import structlog
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from pydantic import ValidationError

from services.costing import metrics
from services.costing.service import CostingService, PermanentError
from shared.broker import event_message, publish_raw
from shared.db import UnavailableError
from shared.events import parse_event
from shared.faults import crash_if
from shared.logging import get_logger

log = get_logger("costing.consumer")

RECORD_DEAD_LETTER = """
INSERT INTO dead_letters (event_id, tenant_id, routing_key, reason, body) VALUES ($1, $2, $3, $4, $5)"""


class CostingConsumer:
    def __init__(self, service: CostingService, dead_letter_exchange: AbstractExchange, crash_point: str | None = None):
        self.service = service
        self.dead_letter_exchange = dead_letter_exchange
        self.crash_point = crash_point

    async def handle(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        structlog.contextvars.bind_contextvars(
            event_id=headers.get("event_id"), tenant=headers.get("tenant_id"), correlation_id=message.correlation_id)
        try:
            await self._handle(message)
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "tenant", "correlation_id")

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = parse_event(message.body)
        except ValidationError as exc:
            await self.dead_letter(message, f"invalid event: {_summary(exc)}")
            return
        started = time.perf_counter()
        try:
            applied = await self.service.apply(event)
        except UnavailableError as exc:
            log.error("costing.database_unavailable", error=str(exc))
            metrics.EVENTS.labels(event.event_type, "requeued").inc()
            await message.nack(requeue=True)
            return
        except PermanentError as exc:
            await self.dead_letter(message, f"cannot apply: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a bug or contention past the retry limit: park it, keep going
            log.exception("costing.apply_failed")
            await self.dead_letter(message, f"failed: {type(exc).__name__}: {exc}")
            return
        crash_if("after_commit_before_ack", self.crash_point)
        await message.ack()
        metrics.DURATION.observe(time.perf_counter() - started)
        metrics.EVENTS.labels(event.event_type, "applied" if applied else "duplicate").inc()
        log.info("costing.event.applied" if applied else "costing.event.duplicate", event_type=event.event_type)

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Park the message with its reason (confirmed by the broker), record it, then ack."""
        headers = dict(message.headers or {})
        reason = reason[:2000]
        headers.update({"x-error": reason, "x-original-routing-key": message.routing_key or ""})
        parked = event_message(message.body, str(headers.get("event_id", "")), str(headers.get("tenant_id", "")),
                               message.correlation_id, headers)
        await publish_raw(self.dead_letter_exchange, message.routing_key or "unknown", parked)
        try:
            await self.service.pool.execute(
                RECORD_DEAD_LETTER, _uuid(headers.get("event_id")), _uuid(headers.get("tenant_id")),
                message.routing_key, reason, message.body)
        except Exception:  # noqa: BLE001 - the queue holds it; the table is for status lookups
            log.exception("costing.dead_letter_record_failed")
        await message.ack()
        metrics.DEAD_LETTERED.labels(reason.split(":", 1)[0]).inc()
        log.error("costing.event.dead_lettered", reason=reason)


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
