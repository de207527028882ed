"""Small asyncio helpers: waiting for a wake-up, backing off after failures, the
background loop built of both (the outbox relay, the QuickBooks worker), and a
background task held for the life of a cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


#: The cyclic collector's thresholds after start-up (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (10_000, 20, 20)


def quiet_garbage_collector() -> None:
    """Once a service has started: move everything it allocated so far (modules, the app,
    pools, caches) out of the cyclic garbage collector's reach, and collect the young
    generations less often. A full collection otherwise walks every object the process
    holds, a pause that every request in flight waits for (the ingest bench's p99)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop's event loop (libuv): the services' loops spend a third of
    their CPU in asyncio's own machinery (bench/RESULTS.md, ingest profile), which uvloop
    does in C."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


#: Jitter from a generator of our own, not the random module's shared one: a test framework
#: (hypothesis) owns that state while it runs, and nothing here needs to share it.
_JITTER = random.Random()  # noqa: S311 - spreads retry delays, nothing secret


def random_fraction() -> float:
    """A float in [0, 1) for spreading retry delays (not for anything secret)."""
    return _JITTER.random()


async def wait_for_event(event: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109 - a bounded wait: timing out is its normal end
    """Wait until ``event`` is set or ``timeout`` s pass, then clear it. Unlike
    ``asyncio.wait_for`` on Python 3.11, a cancellation arriving as the event is
    set is never swallowed, so a background loop always stops when cancelled."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    event.clear()


class Backoff:
    """Exponential backoff: ``first`` s after the first failure, ``factor`` times more
    after each next one, at most ``cap`` s; ``reset()`` after a success. ``jitter``
    (0 to 1) spreads each delay at random over ``[delay × (1 - jitter), delay]``, so
    that many clients failing together do not retry together."""

    def __init__(
        self,
        first: float,
        cap: float,
        factor: float = 2.0,
        jitter: float = 0.0,
        rng: Callable[[], float] | None = None,
    ):
        if first <= 0 or cap <= 0 or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("Backoff needs first > 0, cap > 0, factor >= 1 and 0 <= jitter <= 1")
        self.first, self.cap, self.factor, self.jitter = first, cap, factor, jitter
        self._rng = rng or random_fraction
        #: Failures since the last reset.
        self.failures = 0

    def next_delay(self) -> float:
        """Count a failure and return how long to wait before trying again."""
        self.failures += 1
        delay = min(self.cap, self.first * self.factor ** (self.failures - 1))
        return delay * (1 - self.jitter * self._rng())

    async def sleep(self) -> float:
        """Count a failure and wait before trying again; returns the delay slept."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        self.failures = 0


async def wake_loop(
    step: Callable[[], Awaitable[bool]],
    wake: asyncio.Event,
    idle_timeout: float,
    backoff: Backoff,
    on_error: Callable[[Exception, float], Awaitable[None] | None],
) -> None:
    """Run ``step`` until cancelled: again at once while it reports work (True), after
    ``wake`` is set (or ``idle_timeout`` s) when it found none, and after the backoff's
    delay when it raised. ``on_error(exc, delay)`` (sync or async) logs the failure and
    cleans up before the wait; a success resets the backoff."""
    while True:
        try:
            busy = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = backoff.next_delay()
            outcome = on_error(exc, delay)
            if inspect.isawaitable(outcome):
                await outcome
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        if not busy:
            await wait_for_event(wake, idle_timeout)


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """A background task for the life of the block (a cleanup context's resource):
    cancelled and awaited on the way out."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
