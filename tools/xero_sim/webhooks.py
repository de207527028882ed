"""Webhook sender: batches events, numbers them, signs, delivers, retries; the intent-to-receive handshake;
test faults.

Events within ``webhook_batch_window`` seconds go out in one POST (≤ ``webhook_batch_max`` events; several
tenants may share a POST — Xero sends one app-wide stream, docs/xero.md §2.6). Sequence numbers are app-wide and
increase by one per event. A delivery not answered 200 within ``webhook_timeout`` is retried with the same body
after the gaps of ``webhook_retry_schedule`` (the last gap repeats), up to ``webhook_max_attempts``.

Faults (``POST /sim/webhooks/config``): ``duplicate`` (probability a delivered batch is sent again),
``reorder`` (shuffle each batch), ``drop`` (probability an event is never sent), ``drop_next`` (drop the next
N events), ``delay_seconds``, ``hold`` (queue until released), ``bad_signature``, ``url``, ``seed``.

``intent_to_receive()`` sends Xero's handshake: a correctly signed and an incorrectly signed empty-events POST
(in random order); the endpoint passes when it answers 401 to the bad one and 200 with an empty body to the good
one. With ``require_itr`` no events are delivered (they are dropped) until a handshake has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from shared.logging import get_logger
from tools.xero_sim import payloads
from tools.xero_sim.config import SimConfig
from tools.xero_sim.payloads import Event
from tools.xero_sim.stats import Stats

log = get_logger("xero_sim.webhooks")


class WebhookFaults(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    duplicate: float = Field(default=0.0, ge=0, le=1)
    reorder: bool = False
    delay_seconds: float = Field(default=0.0, ge=0)
    drop: float = Field(default=0.0, ge=0, le=1)
    drop_next: int = Field(default=0, ge=0)
    hold: bool = False
    bad_signature: bool = False
    url: str | None = None
    seed: int | None = None


@dataclass
class Delivery:
    events: list[Event]
    body: bytes
    url: str
    headers: dict[str, str]

    @property
    def tenants(self) -> Counter[str]:
        return Counter(event.tenant for event in self.events)


class WebhookSender:
    def __init__(self, config: SimConfig, stats: Stats):
        self.config = config
        self.stats = stats
        self.faults = WebhookFaults()
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        #: ``OK`` after a passed handshake, ``FAILED`` after a failed one, else ``UNVERIFIED`` (portal status).
        self.status = "UNVERIFIED"
        self._random = random.Random()
        self._sequence = 0
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout))
        self._worker = asyncio.create_task(self._run(), name="xero-sim-webhooks")

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

    @property
    def url(self) -> str:
        return self.faults.url or self.config.webhook_url

    # --- queueing -----------------------------------------------------------------------
    def _drop(self, event: Event, reason: str) -> None:
        self.stats.add(event.tenant, "webhooks_dropped")
        self.log.append(
            {
                "dropped": event.id,
                "reason": reason,
                "tenant": event.tenant,
                "category": event.category,
                "resource_id": event.resource_id,
                "event_type": event.event_type,
            }
        )

    def enqueue(self, events: list[Event]) -> None:
        kept = []
        for event in events:
            if self.config.require_itr and self.status != "OK":
                self._drop(event, "webhook not verified (intent to receive)")
            elif self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                self._drop(event, "drop_next")
            elif self.faults.drop and self._random.random() < self.faults.drop:
                self._drop(event, "drop")
            else:
                kept.append(event)
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
                await first
        return sent

    def _headers(self, body: bytes, bad: bool) -> dict[str, str]:
        key = self.config.webhook_key + ("-wrong" if bad else "")
        return {
            "Content-Type": "application/json; charset=utf-8",
            "x-xero-signature": payloads.sign(body, key),
            "User-Agent": "Xero-Webhooks-Simulator/1.0",
        }

    def _prepare(self, batch: list[Event]) -> Delivery:
        first = self._sequence + 1
        self._sequence += len(batch)
        if self.faults.reorder:
            batch = list(batch)
            self._random.shuffle(batch)
        body = payloads.encode(batch, first, self._sequence, self._random)
        return Delivery(batch, body, self.url, self._headers(body, self.faults.bad_signature))

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
                    log.warning("webhook delivery abandoned", attempts=attempt)
                    return
                await asyncio.sleep(schedule[min(attempt - 1, len(schedule) - 1)])
            if self.faults.duplicate and self._random.random() < self.faults.duplicate:
                for tenant, count in delivery.tenants.items():
                    self.stats.add(tenant, "webhooks_duplicated", count)
                await self._post(delivery, attempt + 1, duplicate=True)
        finally:
            if not first.done():
                first.set_result(False)

    async def _post(self, delivery: Delivery, attempt: int, duplicate: bool = False) -> bool:
        if self._session is None:
            raise RuntimeError("the webhook sender is not started")
        for tenant in delivery.tenants:
            self.stats.add(tenant, "webhook_attempts")
        entry: dict[str, Any] = {
            "attempt": attempt,
            "event_ids": [e.id for e in delivery.events],
            "resource_ids": [e.resource_id for e in delivery.events],
            "tenants": sorted(delivery.tenants),
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
        for tenant, count in delivery.tenants.items():
            self.stats.add(tenant, "webhooks_sent" if ok else "webhook_failures", count if ok else 1)
        return ok

    # --- intent to receive --------------------------------------------------------------
    async def intent_to_receive(self, url: str | None = None, rounds: int = 1) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("the webhook sender is not started")
        target = url or self.url
        plan = [good for _ in range(rounds) for good in (True, False)]
        self._random.shuffle(plan)
        results = []
        for good in plan:
            body = payloads.intent_to_receive(self._random)
            result: dict[str, Any] = {"signature": "good" if good else "bad"}
            try:
                async with self._session.post(target, data=body, headers=self._headers(body, not good)) as response:
                    text = await response.read()
                    result["status"] = response.status
                    result["body_empty"] = not text
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
            expected = 200 if good else 401
            result["passed"] = result.get("status") == expected and (not good or result.get("body_empty", False))
            results.append(result)
        passed = all(r["passed"] for r in results)
        self.status = "OK" if passed else "FAILED"
        self.log.append({"intent_to_receive": results, "passed": passed, "at": time.time()})
        return {"passed": passed, "status": self.status, "results": results}
