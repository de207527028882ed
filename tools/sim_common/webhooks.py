"""Webhook delivery both simulators share: batching, ordered first attempts, retries, the delivery log and
the delivery faults; a simulator's sender supplies what is specific to its API (body, signature, headers,
which events it refuses).

Changes within ``webhook_batch_window`` seconds go out together (at most ``webhook_batch_max`` events per
POST; several accounts may share one POST). First attempts go out in order, one at a time. A delivery that
is not answered with HTTP 200 within ``webhook_timeout`` is retried with the *same body* after the gaps of
``webhook_retry_schedule`` (the last gap repeats) up to ``webhook_max_attempts``; retries run in the
background unless ``_block_on_failure()`` holds later deliveries back.

Shared faults (``POST /sim/webhooks/config``): ``duplicate`` (probability a delivered batch is sent again),
``reorder`` (shuffle each batch), ``delay_seconds`` (before each first attempt), ``drop`` (probability an
event is never sent) and ``drop_next`` (drop the next N events), ``hold`` (keep events queued until
released), ``url``, ``seed``. Each simulator's faults model extends ``DeliveryFaults`` (the fields its JSON
lists first) with its own fields, in the order its ``/sim/webhooks/config`` answers list them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field
from structlog.typing import FilteringBoundLogger

from tools.sim_common.stats import Stats


class WebhookConfig(Protocol):
    """The settings the sender reads (both ``SimConfig`` classes have them)."""

    @property
    def webhook_url(self) -> str: ...
    @property
    def webhook_batch_window(self) -> float: ...
    @property
    def webhook_batch_max(self) -> int: ...
    @property
    def webhook_timeout(self) -> float: ...
    @property
    def webhook_retry_schedule(self) -> list[float]: ...
    @property
    def webhook_max_attempts(self) -> int: ...


class DeliveryFaults(BaseModel):
    """The faults both simulators list first."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    duplicate: float = Field(default=0.0, ge=0, le=1)
    reorder: bool = False
    delay_seconds: float = Field(default=0.0, ge=0)
    drop: float = Field(default=0.0, ge=0, le=1)
    drop_next: int = Field(default=0, ge=0)


class Faults(Protocol):
    """The delivery faults the shared sender acts on (a pydantic model with ``validate_assignment``)."""

    duplicate: float
    reorder: bool
    delay_seconds: float
    drop: float
    drop_next: int
    hold: bool
    url: str | None
    seed: int | None

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...
    def model_dump(self) -> dict[str, Any]: ...


class Event(Protocol):
    @property
    def id(self) -> str: ...


E = TypeVar("E", bound=Event)
F = TypeVar("F", bound=Faults)


@dataclass
class Delivery(Generic[E]):
    events: list[E]
    body: bytes
    url: str
    headers: dict[str, str]
    #: Events per account (realm or tenant), for the counters.
    accounts: Counter[str]
    #: What every delivery-log entry of this delivery says between ``attempt`` and ``duplicate``.
    summary: dict[str, Any]


class WebhookSender(ABC, Generic[E, F]):
    #: The name of the background worker task.
    task_name = "sim-webhooks"

    def __init__(self, config: WebhookConfig, stats: Stats, faults: F, log: FilteringBoundLogger):
        self.config = config
        self.stats = stats
        self.faults = faults
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        self._logger = log
        self._random = random.Random()
        self._pending: list[E] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- what a simulator supplies --------------------------------------------------------
    @abstractmethod
    def account_of(self, event: E) -> str:
        """The realm or tenant an event belongs to."""

    @abstractmethod
    def _prepare(self, batch: list[E]) -> Delivery[E]:
        """The body, signature and headers of one delivery."""

    @abstractmethod
    def _dropped(self, event: E, reason: str) -> dict[str, Any]:
        """The delivery-log entry of a dropped event."""

    def _drop_reason(self, event: E) -> str | None:
        """Why ``event`` is not sent (``drop_next``, ``drop``), or None to queue it."""
        if self.faults.drop_next > 0:
            self.faults.drop_next -= 1
            return "drop_next"
        if self.faults.drop and self._random.random() < self.faults.drop:
            return "drop"
        return None

    def _block_on_failure(self) -> bool:
        """Whether a failing delivery holds later ones back until it succeeds or is abandoned."""
        return False

    def _abandoned(self, delivery: Delivery[E], attempts: int) -> None:
        self._logger.warning("webhook delivery abandoned", attempts=attempts)

    def _failed(self, entry: dict[str, Any], attempt: int) -> None:
        """Called after each failed POST (logging)."""

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout))
        self._worker = asyncio.create_task(self._run(), name=self.task_name)

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
    def configure(self, changes: dict[str, Any]) -> F:
        merged = type(self.faults).model_validate({**self.faults.model_dump(), **changes})
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
    def enqueue(self, events: list[E]) -> None:
        kept = []
        for event in events:
            reason = self._drop_reason(event)
            if reason is None:
                kept.append(event)
                continue
            self.stats.add(self.account_of(event), "webhooks_dropped")
            self.log.append(self._dropped(event, reason))
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
                self._logger.exception("webhook worker failed")

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
                if self._block_on_failure():
                    await task
                else:
                    await first
        return sent

    def _accounts(self, events: list[E]) -> Counter[str]:
        return Counter(self.account_of(event) for event in events)

    # --- delivery -----------------------------------------------------------------------
    async def _deliver(self, delivery: Delivery[E], first: asyncio.Future[bool]) -> None:
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
                    self._abandoned(delivery, attempt)
                    return
                await asyncio.sleep(schedule[min(attempt - 1, len(schedule) - 1)])
            if self.faults.duplicate and self._random.random() < self.faults.duplicate:
                for account, count in delivery.accounts.items():
                    self.stats.add(account, "webhooks_duplicated", count)
                await self._post(delivery, attempt + 1, duplicate=True)
        finally:
            if not first.done():
                first.set_result(False)

    async def _post(self, delivery: Delivery[E], attempt: int, duplicate: bool = False) -> bool:
        if self._session is None:
            raise RuntimeError("the webhook sender is not started")
        for account in delivery.accounts:
            self.stats.add(account, "webhook_attempts")
        entry: dict[str, Any] = {"attempt": attempt, **delivery.summary, "duplicate": duplicate, "at": time.time()}
        try:
            async with self._session.post(delivery.url, data=delivery.body, headers=delivery.headers) as response:
                await response.read()
                entry["status"] = response.status
                ok = response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            ok = False
        self.log.append(entry)
        for account, count in delivery.accounts.items():
            self.stats.add(account, "webhooks_sent" if ok else "webhook_failures", count if ok else 1)
        if not ok:
            self._failed(entry, attempt)
        return ok
