"""Webhook sender: batches changes, signs, delivers, retries; with test faults.

Changes within ``webhook_batch_window`` seconds go out together (at most ``webhook_batch_max``
events per POST; several realms may share one POST, as third parties report for CloudEvents).
First attempts go out in order, one at a time. A delivery that is not answered with HTTP 200
within ``webhook_timeout`` is retried with the *same body* (same CloudEvent ids) after the gaps of
``webhook_retry_schedule`` (the last gap repeats) up to ``webhook_max_attempts``; retries run in the
background unless ``block_on_failure`` holds later deliveries back (Intuit: "you may not receive
subsequent events until you acknowledge the first").

Faults (``POST /sim/webhooks/config``): ``duplicate`` (probability a delivered batch is sent again),
``reorder`` (shuffle each batch), ``delay_seconds`` (before each first attempt), ``drop`` (probability
an event is never sent) and ``drop_next`` (drop the next N events), ``format``, ``void_type``,
``hold`` (keep events queued until released), ``block_on_failure``, ``content_type``,
``bad_signature`` (sign with a wrong key), ``url``, ``seed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from shared.logging import get_logger
from tools.qbo_sim import payloads
from tools.qbo_sim.config import SimConfig
from tools.qbo_sim.payloads import Event
from tools.qbo_sim.stats import Stats

log = get_logger("qbo_sim.webhooks")


class WebhookFaults(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    duplicate: float = Field(default=0.0, ge=0, le=1)
    reorder: bool = False
    delay_seconds: float = Field(default=0.0, ge=0)
    drop: float = Field(default=0.0, ge=0, le=1)
    drop_next: int = Field(default=0, ge=0)
    format: Literal["cloudevents", "legacy"] = "cloudevents"
    void_type: Literal["voided", "void"] = "voided"
    hold: bool = False
    block_on_failure: bool = False
    content_type: str | None = None
    bad_signature: bool = False
    url: str | None = None
    seed: int | None = None


@dataclass
class Delivery:
    events: list[Event]
    body: bytes
    fmt: str
    url: str
    headers: dict[str, str]

    @property
    def realms(self) -> Counter[str]:
        return Counter(event.realm for event in self.events)


class WebhookSender:
    def __init__(self, config: SimConfig, stats: Stats):
        self.config = config
        self.stats = stats
        self.faults = WebhookFaults(format=config.webhook_format, void_type=config.void_type)
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        self._random = random.Random()
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._source = payloads.source_for(config.client_id)

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout))
        self._worker = asyncio.create_task(self._run(), name="qbo-sim-webhooks")

    async def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        tasks = [t for t in (self._worker, *self._tasks) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session:
            await self._session.close()

    # --- configuration ------------------------------------------------------------------
    def configure(self, changes: dict[str, Any]) -> WebhookFaults:
        merged = WebhookFaults.model_validate({**self.faults.model_dump(), **changes})
        self.faults = merged
        if "seed" in changes and merged.seed is not None:
            self._random.seed(merged.seed)
        if not merged.hold and self._pending:
            self._wake.set()
        return merged

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- queueing -----------------------------------------------------------------------
    def enqueue(self, events: list[Event]) -> None:
        kept = []
        for event in events:
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
            elif not (self.faults.drop and self._random.random() < self.faults.drop):
                kept.append(event)
                continue
            self.stats.add(event.realm, "webhooks_dropped")
            self.log.append(
                {
                    "dropped": event.id,
                    "realm": event.realm,
                    "entity": event.entity,
                    "entity_id": event.entity_id,
                    "operation": event.operation,
                }
            )
        if not kept:
            return
        self._pending.extend(kept)
        if len(self._pending) >= self.config.webhook_batch_max:
            self._wake.set()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.config.webhook_batch_window, self._wake.set)

    async def flush(self) -> int:
        """Deliver everything pending now (first attempts done on return), unless held."""
        return await self._drain()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except Exception:  # never let the worker die
                log.exception("webhook worker failed")

    async def _drain(self) -> int:
        sent = 0
        async with self._lock:
            if self._timer:
                self._timer.cancel()
                self._timer = None
            while self._pending and not self.faults.hold:
                batch = self._pending[: self.config.webhook_batch_max]
                del self._pending[: len(batch)]
                sent += len(batch)
                delivery = self._prepare(batch)
                first: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                task = asyncio.create_task(self._deliver(delivery, first))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if self.faults.block_on_failure:
                    await task
                else:
                    await first
        return sent

    def _prepare(self, batch: list[Event]) -> Delivery:
        faults = self.faults
        if faults.reorder:
            batch = list(batch)
            self._random.shuffle(batch)
        body = payloads.encode(batch, faults.format, faults.void_type, self._source)
        key = self.config.verifier_token + ("-wrong" if faults.bad_signature else "")
        content_type = faults.content_type or "application/json"
        headers = {
            "Content-Type": content_type,
            "intuit-signature": payloads.sign(body, key),
            "User-Agent": "Intuit-Webhooks-Simulator/1.0",
        }
        return Delivery(batch, body, faults.format, faults.url or self.config.webhook_url, headers)

    # --- delivery -----------------------------------------------------------------------
    async def _deliver(self, delivery: Delivery, first: asyncio.Future[bool]) -> None:
        try:
            if self.faults.delay_seconds:
                await asyncio.sleep(self.faults.delay_seconds)
            schedule = self.config.webhook_retry_schedule or [1.0]
            attempt = 0
            while True:
                attempt += 1
                ok = await self._post(delivery, attempt)
                if not first.done():
                    first.set_result(ok)
                if ok:
                    break
                if attempt >= self.config.webhook_max_attempts:
                    log.warning(
                        "webhook delivery abandoned", attempts=attempt, event_ids=[e.id for e in delivery.events]
                    )
                    return
                await asyncio.sleep(schedule[min(attempt - 1, len(schedule) - 1)])
            if self.faults.duplicate and self._random.random() < self.faults.duplicate:
                for realm, count in delivery.realms.items():
                    self.stats.add(realm, "webhooks_duplicated", count)
                await self._post(delivery, attempt + 1, duplicate=True)
        finally:
            if not first.done():
                first.set_result(False)

    async def _post(self, delivery: Delivery, attempt: int, duplicate: bool = False) -> bool:
        if self._session is None:
            raise RuntimeError("the webhook sender is not started")
        for realm in delivery.realms:
            self.stats.add(realm, "webhook_attempts")
        entry: dict[str, Any] = {
            "attempt": attempt,
            "format": delivery.fmt,
            "event_ids": [e.id for e in delivery.events],
            "realms": sorted(delivery.realms),
            "duplicate": duplicate,
            "at": time.time(),
        }
        try:
            async with self._session.post(delivery.url, data=delivery.body, headers=delivery.headers) as response:
                await response.read()
                entry["status"] = response.status
                ok = response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            ok = False
        self.log.append(entry)
        for realm, count in delivery.realms.items():
            self.stats.add(realm, "webhooks_sent" if ok else "webhook_failures", count if ok else 1)
        if not ok:
            log.info("webhook delivery failed", attempt=attempt, status=entry.get("status"), error=entry.get("error"))
        return ok
