"""Fixtures of the fault suite (tests/faults/README.md): the mode (``--fault-mode=ci``, short
with fixed seeds, the default; ``soak``, longer with random seeds), the harness of one test
(history, proxies, service subprocesses, all cleaned up), and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import random
import uuid

import pytest

from shared.migrate import recreate_database
from tests.faults.harness import History, ScratchCluster, ServiceProcess
from tests.tcp_proxy import TcpProxy, through


class Mode:
    def __init__(self, name: str):
        self.name = name
        self.soak = name == "soak"

    def size(self, ci: int, soak: int) -> int:
        return soak if self.soak else ci

    def seed(self, fixed: int) -> int:
        """The fixed seed in CI; a fresh one (printed, to replay a failure) in soak mode."""
        if not self.soak:
            return fixed
        seed = random.SystemRandom().randrange(1, 2**31)
        print(f"soak seed {seed} (fixed seed in CI: {fixed})")
        return seed


@pytest.fixture(scope="session")
def mode(pytestconfig) -> Mode:
    return Mode(pytestconfig.getoption("--fault-mode"))


class Harness:
    def __init__(self, names, database_url: str, tmp_path):
        from shared import broker

        self.names = broker.Names(names) if isinstance(names, str) else names
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.history = History(self.names)
        self.proxies: list[TcpProxy] = []
        self.services: list[ServiceProcess] = []

    async def proxy(self, url: str, query: str = "") -> tuple[TcpProxy, str]:
        """A started fault proxy to the server of ``url``, and ``url`` through it."""
        proxy = TcpProxy.to(url)
        self.proxies.append(proxy)
        return proxy, through(url, await proxy.start(), query)

    def service(self, name: str, **env: str) -> ServiceProcess:
        """A service subprocess on this test's database (service role) and broker names;
        ``env`` adds settings (CRASH_POINT, AMQP_URL through a proxy, ...)."""
        from tests.conftest import TEST_AMQP_URL, TEST_DATABASE_URL

        base = {
            "DATABASE_URL": self.database_url,
            "DATABASE_OWNER_URL": TEST_DATABASE_URL,
            "AMQP_URL": TEST_AMQP_URL,
            "BROKER_PREFIX": self.names.prefix,
            "COSTING_BROKER_STATS_SECONDS": "0.5",
        }
        process = ServiceProcess(name, {**base, **env}, self.tmp_path)
        self.services.append(process)
        return process

    async def close(self) -> None:
        for process in self.services:
            await process.stop()
        for proxy in self.proxies:
            await proxy.stop()


@pytest.fixture
async def harness(pool, database_url, broker_prefix, tmp_path):
    h = Harness(broker_prefix, database_url, tmp_path)
    yield h
    await h.close()


@pytest.fixture(scope="module")
async def scratch():
    """A PostgreSQL cluster of this module's own (initdb, own port), migrated: (cluster,
    owner URL, service-role URL). For the destructive faults (an immediate stop)."""
    cluster = ScratchCluster()
    try:
        cluster.init()
        cluster.start()
        service_url = cluster.owner_url.replace("postgres@", "partsemble_app@")
        await recreate_database(cluster.owner_url, service_url)
        yield cluster, cluster.owner_url, service_url
    finally:
        cluster.destroy()


async def new_tenant(pool) -> uuid.UUID:
    from tests.conftest import new_tenant as make

    return await make(pool)
