"""The fault harness (docs/reliability.md §7.1, issue 19): one set of tools for every
scenario of tests/faults/.

* ``ServiceProcess``: a service (costing, ingest, query) run as a real subprocess, which a
  test can SIGTERM (graceful shutdown) or SIGKILL, with its log kept for the secret scan;
  named crash points (shared/faults.py) are enabled only through its environment.
* ``TcpProxy`` (tests/tcp_proxy.py): the loopback fault proxy in front of RabbitMQ or
  PostgreSQL: down, blackhole, reset, latency and jitter, slicer.
* ``ScratchCluster``: a PostgreSQL cluster of its own (``initdb`` in a temporary folder, its
  own port) for the destructive database faults (an immediate stop), never the shared one.
* ``History``: what the test sent (each delivery, duplicates included) and the facts behind
  it; with ``observe`` what became of it: logged (event_log), confirmed (logged and no longer
  in the outbox), committed (processed_events), parked (dead_letters) and the broker's counts.
* ``check``: the one checker: lost, duplicated and unexpected events, the invariants I1–I3
  and I8 (the auditor's SQL), I9 (nothing both applied and parked), I10 (queues drained,
  consumers back, no session idle in a transaction, no outbox row stuck), and the canonical
  projection of each tenant compared with the reference model. Its ``Report`` holds the
  counts tests/faults/README.md quotes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg

from shared import broker
from shared.events import Event
from tests import secret_scan
from tests.conftest import TEST_AMQP_URL
from tests.invariants import violations
from tests.projection import project
from tests.reference_model import compute

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: Where each scenario's report is written (tests/faults/README.md quotes them).
RESULTS = Path(os.environ.get("FAULT_RESULTS", ROOT / "var" / "fault-results.jsonl"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- services as subprocesses ------------------------------------------------------------------


class ServiceProcess:
    """``python -m services.<name>`` with its own environment and HTTP port."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path):
        self.name = name
        self.port = free_port()
        port_variable = {"costing": "COSTING_PORT", "ingest": "INGEST_PORT", "query": "QUERY_PORT"}[name]
        self.env = {**os.environ, "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", port_variable: str(self.port), **env}
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self, ready: bool = True, timeout: float = 60.0) -> ServiceProcess:  # noqa: ASYNC109
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{self.name}", env=self.env, cwd=ROOT, stdout=log, stderr=log
        )
        log.close()
        if ready:
            await self.wait_answering("/readyz" if self.name == "costing" else "/healthz", timeout)
        return self

    async def wait_answering(self, path: str = "/healthz", timeout: float = 60.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process is not None and self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited with {self.process.returncode}: {self.log()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(self.url + path) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not answering {path} within {timeout}s: {self.log()[-2000:]}")
                await asyncio.sleep(0.1)

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as response:
            return response.status, await response.text()

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of the process's /metrics (summed over the labels not given)."""
        from prometheus_client.parser import text_string_to_metric_families

        _, text = await self.get("/metrics")
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    async def wait(self, timeout: float = 60.0) -> int:  # noqa: ASYNC109
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[str]:
        """The ``event`` of every JSON log line."""
        events = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line).get("event", ""))
        return events

    async def stop(self) -> None:
        if self.running:
            self.kill()
            await self.wait()
        secret_scan.record(self.log())


# --- a throwaway PostgreSQL cluster ------------------------------------------------------------


class ScratchCluster:
    """A PostgreSQL 15 cluster of its own in a temporary folder, on its own port, run as the
    ``postgres`` system user (initdb refuses root): stopping it, even ``-m immediate``,
    touches no one else's database."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pt-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.owner_url = f"postgresql://postgres@127.0.0.1:{self.port}/partsemble_scratch"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                # A commit must survive the server process dying (an immediate stop): it is in the
                # WAL written to the OS before COMMIT returns. synchronous_commit = off would let
                # PostgreSQL lose the last commits it had acknowledged (the consumer acks after
                # them). fsync = off only risks an operating-system crash, which no test makes.
                "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\nshared_buffers = 32MB\n"
                "max_connections = 60\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the history and the checker ---------------------------------------------------------------


@dataclasses.dataclass
class History:
    """What a scenario sent, and (``observe``) what became of it."""

    names: broker.Names
    facts: dict[uuid.UUID, Event] = dataclasses.field(default_factory=dict)
    deliveries: int = 0
    faults: Counter[str] = dataclasses.field(default_factory=Counter)
    #: Event ids the scenario expects parked (poison messages) rather than applied.
    expect_parked: set[uuid.UUID] = dataclasses.field(default_factory=set)
    started: float = dataclasses.field(default_factory=time.monotonic)

    def sent(self, events: list[Event]) -> None:
        """Record deliveries (duplicates count as deliveries, the facts once)."""
        for event in events:
            self.facts.setdefault(event.event_id, event)
        self.deliveries += len(events)

    def fault(self, kind: str, n: int = 1) -> None:
        self.faults[kind] += n

    @property
    def tenants(self) -> set[uuid.UUID]:
        return {event.tenant_id for event in self.facts.values()}

    async def publish(self, exchange: aio_pika.abc.AbstractExchange, events: list[Event]) -> None:
        """Publish to the broker with confirms, recording each delivery."""
        for event in events:
            await broker.publish_event(exchange, event)
        self.sent(events)

    async def adopt_log(self, pool: asyncpg.Pool, tenant_id: uuid.UUID) -> None:
        """Facts written through the ingest API: the tenant's event log is what was accepted."""
        from shared.events import parse_event

        for row in await pool.fetch("SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY seq", tenant_id):
            event = parse_event(bytes(row["body"]))
            self.facts.setdefault(event.event_id, event)

    async def observe(self, pool: asyncpg.Pool) -> dict[str, Any]:
        tenants = list(self.tenants)
        logged = {r[0] for r in await pool.fetch("SELECT event_id FROM event_log WHERE tenant_id = ANY($1)", tenants)}
        in_outbox = {
            r[0]
            for r in await pool.fetch(
                "SELECT e.event_id FROM outbox o JOIN event_log e USING (seq) WHERE e.tenant_id = ANY($1)", tenants
            )
        }
        committed = [
            r[0] for r in await pool.fetch("SELECT event_id FROM processed_events WHERE tenant_id = ANY($1)", tenants)
        ]
        parked = [
            r[0]
            for r in await pool.fetch(
                "SELECT event_id FROM dead_letters WHERE tenant_id = ANY($1) AND redriven_at IS NULL", tenants
            )
        ]
        return {
            "logged": logged,
            "confirmed": logged - in_outbox,
            "outbox": in_outbox,
            "committed": committed,
            "parked": parked,
            "queues": await queue_counts(self.names),
        }


async def queue_counts(names: broker.Names) -> dict[str, dict[str, int]]:
    """Ready messages and consumers of the costing queue and its dead-letter queue, asked on a
    connection of its own (a robust channel answers a repeated declare from its cache)."""
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        channel = await connection.channel()
        counts = {}
        for name in (names.costing_queue, names.dead_letter_queue):
            try:
                declared = (await channel.declare_queue(name, passive=True)).declaration_result
            except aio_pika.exceptions.ChannelClosed:
                channel = await connection.channel()
                counts[name] = {"ready": 0, "consumers": 0}
                continue
            counts[name] = {"ready": declared.message_count or 0, "consumers": declared.consumer_count or 0}
        return counts
    finally:
        await connection.close()


@dataclasses.dataclass
class Report:
    scenario: str
    seed: int | None
    events_sent: int
    facts: int
    duplicates_sent: int
    duplicates_absorbed: int
    faults_injected: dict[str, int]
    lost: int
    duplicated: int
    unexpected: int
    parked: int
    invariant_violations: dict[str, int]
    state_equals_model: bool
    liveness: dict[str, Any]
    seconds: float
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.scenario}: sent {self.events_sent} ({self.facts} facts, {self.duplicates_sent} duplicate "
            f"deliveries), duplicates absorbed {self.duplicates_absorbed}, faults {dict(self.faults_injected)}, "
            f"lost {self.lost}, duplicated {self.duplicated}, unexpected {self.unexpected}, parked {self.parked}, "
            f"state = reference model: {self.state_equals_model}, {self.seconds:.1f}s"
        )


async def check(
    pool: asyncpg.Pool,
    history: History,
    scenario: str,
    *,
    seed: int | None = None,
    consumers: int | None = None,
    duplicates_absorbed: int = 0,
    extra: dict[str, Any] | None = None,
) -> Report:
    """The one checker (see the module doc); asserts everything and returns the report.
    ``consumers``: how many consumers the costing queue must have once healed (None: unchecked)."""
    seen = await history.observe(pool)
    facts = set(history.facts)
    committed, parked = seen["committed"], seen["parked"]
    done = set(committed) | set(parked)
    lost = facts - done
    duplicated = (len(committed) - len(set(committed))) + len(set(committed) & set(parked))
    unexpected = (done - facts) | (set(parked) - history.expect_parked)
    broken: dict[str, int] = {}
    equal = True
    for tenant in history.tenants:
        for name, rows in (await violations(pool, tenant)).items():
            if rows:
                broken[name] = broken.get(name, 0) + len(rows)
        applied = [
            e for e in history.facts.values() if e.tenant_id == tenant and e.event_id not in history.expect_parked
        ]
        equal = equal and await project(pool, tenant) == compute(applied)
    costing = seen["queues"][history.names.costing_queue]
    idle_in_transaction = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND state LIKE 'idle in transaction%' AND now() - state_change > interval '2 seconds'"
    )
    liveness = {
        "queue_ready": costing["ready"],
        "consumers": costing["consumers"],
        "dead_letter_ready": seen["queues"][history.names.dead_letter_queue]["ready"],
        "outbox_pending": len(seen["outbox"]),
        "idle_in_transaction": idle_in_transaction,
    }
    report = Report(
        scenario=scenario,
        seed=seed,
        events_sent=history.deliveries or len(facts),
        facts=len(facts),
        duplicates_sent=max(0, history.deliveries - len(facts)),
        duplicates_absorbed=int(duplicates_absorbed),
        faults_injected=dict(history.faults),
        lost=len(lost),
        duplicated=duplicated,
        unexpected=len(unexpected),
        parked=len(parked),
        invariant_violations=broken,
        state_equals_model=equal,
        liveness=liveness,
        seconds=time.monotonic() - history.started,
        extra=extra or {},
    )
    record(report)
    assert report.lost == 0, f"lost: {sorted(map(str, lost))[:10]}"
    assert report.duplicated == 0
    assert report.unexpected == 0, f"unexpected: {sorted(map(str, unexpected))[:10]}"
    assert not broken, f"invariants broken: {broken}"
    assert equal, "the database's projection differs from the reference model"
    assert liveness["queue_ready"] == 0, liveness
    assert liveness["outbox_pending"] == 0, liveness
    assert liveness["idle_in_transaction"] == 0, liveness
    if consumers is not None:
        assert liveness["consumers"] == consumers, liveness
    print(report.summary())
    return report


def record(report: Report) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        **dataclasses.asdict(report),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": f"{socket.gethostname()} ({os.cpu_count()} cores)",
    }
    with RESULTS.open("a") as out:
        out.write(json.dumps(entry, default=str) + "\n")
