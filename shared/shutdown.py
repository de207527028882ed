"""Serving a service until SIGTERM/SIGINT, then shutting down gracefully within a bound.

The first signal starts the shutdown: the HTTP site stops accepting connections and waits
for the requests in flight, then the application's cleanup contexts close in reverse order
(each service's background work finishes or hands back what it holds: the costing
consumer completes the batch in hand and republishes what it had not started, the outbox
relay completes the batch it is publishing; see each service's composition root), then the
connections close. The whole shutdown is bounded by ``SHUTDOWN_GRACE_SECONDS``; beyond it,
or on a second signal, the process exits at once (code ``EXIT_FORCED``): what it held is
rolled back by PostgreSQL and returned by RabbitMQ, which the inbox and the outbox absorb.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from shared.aio import quiet_garbage_collector
from shared.http_server import AppRunner
from shared.logging import get_logger

log = get_logger("shutdown")

#: Exit status of a shutdown forced by a second signal or by the grace period running out.
EXIT_FORCED = 3


def _force(reason: str) -> None:
    log.error("shutdown.forced", reason=reason)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_FORCED)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    grace: float,
    on_started: Callable[[web.AppRunner], None] | None = None,
    **server_kwargs: Any,
) -> None:
    """Set up ``app`` (its cleanup contexts start the service's resources), serve it on
    ``host:port`` until the first SIGTERM/SIGINT, then clean up within ``grace`` seconds."""
    # shared.http_server's runner: a malformed request is answered as JSON, its bytes never logged.
    runner = AppRunner(app, access_log=None, shutdown_timeout=grace, **server_kwargs)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def signalled(sig: signal.Signals) -> None:
        if stop.is_set():
            _force(f"second signal {sig.name}")
        log.info("shutdown.requested", signal=sig.name, grace_seconds=grace)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled, sig)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        quiet_garbage_collector()
        if on_started is not None:
            on_started(runner)
        await stop.wait()
    finally:
        try:
            async with asyncio.timeout(grace):
                await runner.cleanup()
        except TimeoutError:
            _force(f"shutdown took longer than {grace} s")
    log.info("shutdown.completed")
