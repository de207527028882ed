"""Beyond one machine (issue 20): the query service reading from a PostgreSQL streaming
replica (QUERY_DATABASE_URL). A throwaway primary (initdb) and its replica (pg_basebackup -R)
on their own ports in temporary directories. With the replica's replay paused, a new sale is
not listed yet, but its event status (read on the primary) is, and the lag shows in the
metrics; once replay resumes, the list catches up and the lag is back to 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from services.costing.service import CostingService
from shared.db import create_pool
from shared.migrate import migrate
from tests.conftest import make_api_tenant, wait_for
from tests.histories import history
from tests.processes import free_port, metric, running

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The machine's PostgreSQL binaries are required (scripts/infra.sh installs the server): a missing
# initdb fails these tests rather than skipping them.
pytestmark = pytest.mark.slow


def _as_postgres(*args: str) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def _run(*args: str) -> None:
    result = subprocess.run(_as_postgres(*args), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])


@pytest.fixture
def primary_and_replica():
    base = Path(tempfile.mkdtemp(prefix="pt-replica-"))  # not under pytest's root-only tmp_path
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary, replica = base / "primary", base / "replica"
    ports = free_port(), free_port()
    _run(str(PG_BIN / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    with (primary / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {ports[0]}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n")
    started = []
    try:
        _run(str(PG_BIN / "pg_ctl"), "-D", str(primary), "-l", str(base / "primary.log"), "-w", "start")
        started.append(primary)
        _run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres",
             "-D", str(replica), "-R", "-X", "stream", "-c", "fast")  # fmt: skip
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {ports[1]}\nhot_standby = on\n")
        _run(str(PG_BIN / "pg_ctl"), "-D", str(replica), "-l", str(base / "replica.log"), "-w", "start")
        started.append(replica)
        yield [f"postgresql://postgres@127.0.0.1:{port}/partsemble" for port in ports]
    finally:
        for data in reversed(started):
            subprocess.run(_as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
                           capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def service_url(owner_url: str) -> str:
    return owner_url.replace("postgres@", "partsemble_app@", 1)


async def test_query_reads_the_replica_and_the_event_status_the_primary(primary_and_replica, broker_prefix):
    primary_owner, replica_owner = primary_and_replica
    await migrate(primary_owner, service_url(primary_owner))
    owner = await create_pool(primary_owner, min_size=1, max_size=4)
    service = await create_pool(service_url(primary_owner), min_size=1, max_size=4)
    standby = await asyncpg.connect(replica_owner.rsplit("/", 1)[0] + "/postgres")
    try:
        tenant_id, headers = await make_api_tenant(owner)
        events = history(tenant_id, seed=7, sales=6)
        costing = CostingService(service)
        for event in events:
            await costing.apply(event)
        env = {"QUERY_DATABASE_URL": service_url(replica_owner)}
        async with (
            running([("query", env)], service_url(primary_owner), "amqp://unused/", broker_prefix) as [query],
            aiohttp.ClientSession(headers=headers) as http,
        ):

            async def listed() -> int:
                async with http.get(f"{query.url}/api/v1/sales?limit=200") as response:
                    assert response.status == 200, await response.text()
                    return int((await response.json())["summary"]["count"])

            total = await owner.fetchval("SELECT count(*) FROM sales WHERE tenant_id = $1", tenant_id)
            await wait_for(lambda: _equals(listed, total), timeout=30)

            await standby.execute("SELECT pg_wal_replay_pause()")
            more = history(tenant_id, seed=8, sales=3)
            new_sales = [e for e in more if e.event_type == "sale.upserted"]
            for event in more:
                await costing.apply(event)
            async with http.get(f"{query.url}/api/v1/events/{new_sales[-1].event_id}") as response:
                assert response.status == 200, await response.text()  # the primary: read-your-writes
            assert await listed() == total  # the replica has not replayed it yet
            await wait_for(lambda: _positive(metric(query.url, "query_replica_lag_bytes")), timeout=15)

            await standby.execute("SELECT pg_wal_replay_resume()")
            grown = await owner.fetchval("SELECT count(*) FROM sales WHERE tenant_id = $1", tenant_id)
            assert grown > total
            await wait_for(lambda: _equals(listed, grown), timeout=30)
            await wait_for(lambda: _zero(metric(query.url, "query_replica_lag_seconds")), timeout=15)
    finally:
        await standby.close()
        await service.close()
        await owner.close()


async def _equals(read, n: int) -> bool:
    return await read() == n


async def _positive(value) -> bool:
    return await value > 0


async def _zero(value) -> bool:
    return await value == 0
