"""Services as subprocesses (``python -m services.<name>``) for the scale-out and cluster
tests: each on a free port of its own, with this test's database, broker names and secrets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp

from tests.conftest import TEST_DATABASE_URL, wait_for

PORT_VARIABLE = {"ingest": "INGEST_PORT", "query": "QUERY_PORT", "costing": "COSTING_PORT"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    name: str
    port: int
    process: asyncio.subprocess.Process
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def spawn(name: str, database_url: str, amqp_url: str, prefix: str, **env: str) -> Service:
    port = free_port()
    environment = dict(
        os.environ,
        DATABASE_URL=database_url,
        DATABASE_OWNER_URL=TEST_DATABASE_URL,
        AMQP_URL=amqp_url,
        BROKER_PREFIX=prefix,
        LOG_LEVEL="WARNING",
        **{PORT_VARIABLE[name]: str(port)},
        **env,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{name}",
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=None if os.environ.get("SHOW_SERVICE_LOGS") else asyncio.subprocess.DEVNULL,
    )
    return Service(name, port, process, environment)


async def stop(services: list[Service]) -> None:
    for service in services:
        with contextlib.suppress(ProcessLookupError):
            service.process.terminate()
    for service in services:
        try:
            await asyncio.wait_for(service.process.wait(), 20)
        except TimeoutError:
            service.process.kill()
            await service.process.wait()


@contextlib.asynccontextmanager
async def running(
    specs: list[tuple[str, dict[str, str]]], database_url: str, amqp_url: str, prefix: str
) -> AsyncIterator[list[Service]]:
    """Start every (name, extra environment) and wait until all answer /healthz; stop them after."""
    services: list[Service] = []
    try:
        for name, env in specs:
            services.append(await spawn(name, database_url, amqp_url, prefix, **env))
        for service in services:
            await wait_for(lambda service=service: _healthy(service.url), timeout=60, interval=0.2)
        yield services
    finally:
        await stop(services)


async def metric(url: str, name: str, labels: str = "") -> float:
    """The sum of one Prometheus counter or gauge of a service (0 when absent)."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not labels or labels in line) and not line.startswith(f"{name}_created"):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total
