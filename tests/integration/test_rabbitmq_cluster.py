"""Beyond one machine (issue 20): a three-node RabbitMQ cluster with the costing quorum queue
on every node (loopback ports, temporary directories, one Erlang cookie). The services get
all three nodes in AMQP_URL; the node they are connected to is killed (SIGKILL) in the middle
of a stream of writes: nothing is lost, nothing is applied twice, the relay and the consumers
go on with the other nodes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from shared import broker
from shared.events import parse_event
from tests.conftest import wait_for
from tests.invariants import assert_invariants, violations
from tests.processes import free_port, running
from tests.projection import project
from tests.reference_model import compute

pytestmark = [
    pytest.mark.slow,
]
BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves: /usr/sbin's wrappers switch to the rabbitmq user


class Node:
    def __init__(self, base: Path, name: str, home: Path):
        self.name = f"{name}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.dir = base / name
        self.dir.mkdir()
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n")
        self.env = dict(
            os.environ,
            HOME=str(home),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq.conf"),
            RABBITMQ_CONF_ENV_FILE=str(base / "empty.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "plugins"),
            RABBITMQ_PID_FILE=str(self.dir / "pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_SERVER_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        with (self.dir / "out.log").open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen([BIN / "rabbitmq-server"], env=self.env, stdout=log, stderr=log)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [BIN / "rabbitmqctl", "-n", self.name, *args], env=self.env, capture_output=True, timeout=timeout
        )
        assert result.returncode == 0, (args, result.stderr.decode()[-2000:])
        return result.stdout.decode()

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM (a crash, not a shutdown)."""
        pid = int((self.dir / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is None:
            return
        subprocess.run([BIN / "rabbitmqctl", "-n", self.name, "stop"], env=self.env, capture_output=True, timeout=60)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        pid_file = self.dir / "pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)

    def await_startup(self, seconds: float = 90) -> None:
        """Until the node answers (it registers with epmd a few seconds after it starts)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.ctl("await_startup", timeout=seconds)
                return
            except AssertionError:
                if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                    raise
                time.sleep(1)


@pytest.fixture
def cluster(tmp_path):
    base = tmp_path / "rabbitmq"
    home = base / "home"
    home.mkdir(parents=True)
    cookie = home / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20))
    cookie.chmod(0o400)
    (base / "empty.conf").write_text("")
    (base / "plugins").write_text("[].\n")
    tag = uuid.uuid4().hex[:6]
    nodes = [Node(base, f"pt{tag}n{n}", home) for n in (1, 2, 3)]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.await_startup()
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", nodes[0].name)
            node.ctl("start_app")
        assert all(n.name in nodes[0].ctl("cluster_status") for n in nodes)
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(base, ignore_errors=True)


async def applied(pool, tenant_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id)


async def test_killing_a_node_mid_stream_loses_nothing_and_applies_nothing_twice(
    cluster, pool, database_url, api_tenant
):
    tenant_id, headers = api_tenant
    prefix = f"cluster-{uuid.uuid4().hex[:8]}"
    urls = ",".join(n.url for n in cluster)
    # Declare the topology first: the quorum queue gets a member on each of the three nodes.
    connection = await broker.connect(urls, robust=False)
    await broker.declare(await broker.open_channel(connection), broker.Names(prefix))
    await connection.close()
    members = cluster[0].ctl("list_queues", "name", "members", "--quiet")
    assert all(n.name in members for n in cluster), members

    specs = [("ingest", {}), ("costing", {}), ("costing", {})]
    async with running(specs, database_url, urls, prefix) as services, aiohttp.ClientSession() as http:
        ingest = services[0]

        async def post(path: str, body: dict) -> None:
            async with http.post(f"{ingest.url}{path}", json=body, headers=headers) as response:
                assert response.status == 202, await response.text()

        await post("/api/v1/products", {"sku": "W-1", "name": "Widget"})
        lot = {"sku": "W-1", "lot_number": "L1", "quantity": "50", "unit_cost": "2"}
        await post("/api/v1/lots", {**lot, "received_at": "2026-01-01T00:00:00Z"})

        async def stream(first: int, last: int) -> None:
            for n in range(first, last):
                sale = {
                    "reference": f"S-{n}",
                    "type": "invoice",
                    "date": f"2026-02-{n % 27 + 1:02d}",
                    "customer": "Bob",
                    "lines": [{"sku": "W-1", "quantity": str(n % 3 + 1), "unit_price": "5"}],
                }
                await post("/api/v1/sales", sale)
                await asyncio.sleep(0.02)

        writer = asyncio.create_task(stream(0, 60))
        await wait_for(lambda: _above(pool, tenant_id, 10))
        cluster[0].kill()  # every service connected to the first node of the list
        await writer
        await stream(60, 80)
        logged = await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant_id)
        await wait_for(lambda: _count_is(pool, tenant_id, logged), timeout=90, interval=0.2)
        await asyncio.sleep(1)  # a duplicate would arrive now
        assert await applied(pool, tenant_id) == logged
        rows = await pool.fetch("SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY seq", tenant_id)
        events = [parse_event(bytes(r["body"])) for r in rows]
        assert await project(pool, tenant_id) == compute(events)
        assert_invariants(await violations(pool, tenant_id))
        assert len([e for e in events if getattr(e, "external_id", "").startswith("S-")]) == 80
        for service in services:  # all still up, on the other nodes
            async with http.get(f"{service.url}/readyz") as response:
                assert response.status == 200, (service.name, await response.text())


async def _above(pool, tenant_id, n: int) -> bool:
    return await applied(pool, tenant_id) > n


async def _count_is(pool, tenant_id, n: int) -> bool:
    return await applied(pool, tenant_id) == n
