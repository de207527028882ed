"""Small asyncio helpers."""

import asyncio
import contextlib


async def wait_for_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` s pass, then clear it. Unlike
    ``asyncio.wait_for`` on Python 3.11, a cancellation arriving as the event is
    set is never swallowed, so a background loop always stops when cancelled."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    event.clear()
