"""Ingest API benchmark: ``.venv/bin/python -m bench.ingest_bench [--quick]``.

One run, on its own fresh database (``partsemble_bench_ingest``: dropped, created,
migrated) and its own broker prefix, measures:

1. accepted manual-sale writes per second (POST /api/v1/sales answered 202) with
   50 concurrent keep-alive clients over loopback, against the ingest service
   running as a real subprocess (``python -m services.ingest``), and the p50/p99
   latency of those requests;
2. a pgbench baseline, in the same run on the same server: the same database
   transaction (bench/pgbench_ingest.sql: read the tenant, INSERT manual_sales,
   INSERT event_log + outbox, with the row sizes captured from step 1) with 50
   clients, and the ratio accepted writes/s ÷ pgbench tps;
3. where the CPU goes: CPU seconds per accepted write of the ingest process, the
   bench's PostgreSQL backends, RabbitMQ and the load client, from /proc; and a
   short cProfile run of the ingest process (the Python hot spots).

prints them, and rewrites its own part of the "## Ingest" section of
bench/RESULTS.md (between ``<!-- ingest:start -->`` and ``<!-- ingest:end -->``).

A benchmark, not a test: nothing here asserts a wall-clock time. It checks that
what it measured is right (every answer 202, one sale row and one logged,
published event per accepted write) and stops with exit code 2 when it is not.
The helpers at the top (subprocesses, CPU accounting, RESULTS.md sections) are
shared with bench/qbo_bench.py. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import pstats
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg
from yarl import URL

from bench.common import (
    PEAK_RSS_MIB,
    load_average,
    machine_info,
    note_peak_rss,
    peak_rss_text,
    percentile,
    recreate_bench_database,
    run_wrk,
    service_secrets,
    service_url,
    write_section,
)
from shared import broker
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
PGBENCH_SCRIPT = BENCH_DIR / "pgbench_ingest.sql"

# The owner's URL (drop, migrate, set-up, inspection); the ingest service and the pgbench
# baseline connect as the service role (bench/common.py service_url).
DATABASE_URL = os.environ.get(
    "BENCH_INGEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/partsemble_bench_ingest"
)
SERVICE_URL = service_url(DATABASE_URL)
AMQP_URL = os.environ.get("BENCH_AMQP_URL", os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    """What was measured is not what was meant to be measured: stop."""


# === shared helpers (also used by bench/qbo_bench.py) ==========================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(**extra: str) -> dict[str, str]:
    """A service subprocess's environment: this run's secrets, no per-key rate limit, no
    owner URL (callers pass DATABASE_URL, the service role's: bench/common.py)."""
    env = dict(
        os.environ,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
        API_RATE_LIMIT_PER_MINUTE="0",
        **service_secrets(),
    )
    env.pop("PORT", None)
    env.pop("DATABASE_OWNER_URL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


# Runs a service module with a CPU-time cProfile profiler that SIGUSR1 starts and
# SIGUSR2 stops and dumps: only the measured window is profiled (not start-up), and
# time spent waiting for a CPU on a busy machine is not counted.
_PROFILED = """
import cProfile, os, runpy, signal, sys, time
path, module = sys.argv[1], sys.argv[2]
profiler = None
def _start(*_):
    global profiler
    profiler = cProfile.Profile(time.process_time)  # a fresh one per window
    profiler.enable()
def _stop(*_):
    profiler.disable()
    profiler.dump_stats(path + ".tmp")
    os.replace(path + ".tmp", path)
signal.signal(signal.SIGUSR1, _start)
signal.signal(signal.SIGUSR2, _stop)
sys.argv = [module]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


async def spawn(
    module: str, env: dict[str, str], logfile, profile_to: Path | None = None
) -> asyncio.subprocess.Process:
    """``python -m module``; with ``profile_to``, under the signal-driven profiler above."""
    args = ["-c", _PROFILED, str(profile_to), module] if profile_to else ["-m", module]
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, cwd=str(ROOT), stdout=logfile, stderr=logfile
    )


async def profile_window(process: asyncio.subprocess.Process, path: Path, coro) -> tuple[object, Path]:
    """Profile ``process`` (spawned with ``profile_to=path``) while ``coro`` runs; returns
    (its result, the profile's file), once the profile is on disk under a name of its own."""
    await asyncio.to_thread(path.unlink, missing_ok=True)
    process.send_signal(signal.SIGUSR1)
    try:
        result = await coro
    finally:
        process.send_signal(signal.SIGUSR2)
        for _ in range(200):
            if await asyncio.to_thread(path.exists):
                break
            await asyncio.sleep(0.05)
    if not await asyncio.to_thread(path.exists):
        raise BenchError(f"the profiled process {process.pid} wrote no profile to {path}")
    saved = path.with_name(f"{path.stem}-{uuid.uuid4().hex[:6]}.prof")
    await asyncio.to_thread(path.rename, saved)
    return result, saved


async def wait_http(
    session: aiohttp.ClientSession,
    url: str,
    process: asyncio.subprocess.Process,
    what: str,
    logpath: Path,
    seconds: float = 60,
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.returncode is not None:
            raise BenchError(f"{what} exited with {process.returncode}; see {logpath}")
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise BenchError(f"{what} not ready at {url} within {seconds:.0f} s; see {logpath}")
        await asyncio.sleep(0.1)


async def stop_processes(processes: list[asyncio.subprocess.Process], grace: float = 20) -> None:
    """SIGTERM each (they shut down cleanly), SIGKILL after ``grace`` s; only our own children."""
    for p in processes:
        if p.returncode is None:
            note_peak_rss(p.pid)
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            await asyncio.wait_for(p.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            await p.wait()


async def delete_broker_objects(prefix: str) -> None:
    async def delete() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=10)
        try:
            await broker.delete(await connection.channel(), broker.Names(prefix))
        finally:
            await connection.close()

    try:
        await asyncio.wait_for(delete(), 30)
    except Exception as exc:
        log(f"could not delete the broker objects {prefix}.*: {type(exc).__name__}: {exc}")


async def queue_state(name: str) -> tuple[int, int] | None:
    """(messages ready, consumers) of a queue, None if it does not exist; a broker that
    does not answer within 20 s is an error."""

    async def ask() -> tuple[int, int] | None:
        connection = await aio_pika.connect(AMQP_URL, timeout=10)
        try:
            channel = await connection.channel()
            try:
                q = await channel.declare_queue(name, passive=True)
                return q.declaration_result.message_count, q.declaration_result.consumer_count
            except aio_pika.exceptions.ChannelClosed:
                return None
        finally:
            await connection.close()

    try:
        return await asyncio.wait_for(ask(), 20)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
        raise BenchError(f"RabbitMQ at {AMQP_URL} did not answer: {type(exc).__name__}: {exc}") from exc


async def queue_messages(name: str) -> int | None:
    state = await queue_state(name)
    return None if state is None else state[0]


# --- CPU accounting from /proc ------------------------------------------------------------------


def _proc_sched(pid: int) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of all threads of a
    process, from /proc/<pid>/task/*/schedstat (None if it is gone)."""
    cpu = wait = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                on_cpu, queued, _slices = task.joinpath("schedstat").read_text().split()
                cpu += int(on_cpu) / 1e9
                wait += int(queued) / 1e9
    except OSError:
        return None
    return cpu, wait


def _machine_busy() -> tuple[float, float]:
    """(busy seconds, total seconds) of all CPUs since boot, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def listener_pids(port: int) -> list[int]:
    """The processes listening on a local TCP port (from /proc/net/tcp* and /proc/*/fd)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                    pids.append(int(entry.name))
    return pids


def broker_pids() -> list[int]:
    return listener_pids(URL(AMQP_URL).port or 5672)


async def postgres_pids(pool: asyncpg.Pool, database: str) -> list[int]:
    """The backends of our database plus the server's own processes (WAL writer, checkpointer, ...)."""
    rows = await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 OR backend_type <> 'client backend'", database
    )
    return [r["pid"] for r in rows if r["pid"] != 0]


@dataclass
class CpuMeter:
    """CPU seconds used, and seconds spent runnable but waiting for a CPU (run-queue
    wait, from schedstat), between start() and stop() by named groups of processes."""

    groups: dict[str, list[int]]
    include_self: bool = True
    #: The row of the CPU of this process's children that exit (are waited for) in the window.
    children: str | None = None
    _start: dict[str, tuple[float, float]] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    waited: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    machine_busy: float = 0.0

    def _sample(self) -> dict[str, tuple[float, float]]:
        out = {}
        for name, pids in self.groups.items():
            samples = [x for x in (_proc_sched(p) for p in pids) if x is not None]
            out[name] = (sum(c for c, _ in samples), sum(w for _, w in samples))
        if self.include_self:
            out["bench process" + ("" if self.children else " (load generator)")] = _proc_sched(os.getpid()) or (
                0.0,
                0.0,
            )
        if self.children:
            t = os.times()
            out[self.children] = (t.children_user + t.children_system, math.nan)
        out["_machine"] = (_machine_busy()[0], 0.0)
        out["_wall"] = (time.monotonic(), 0.0)
        return out

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> None:
        end = self._sample()
        self.wall = end.pop("_wall")[0] - self._start["_wall"][0]
        self.machine_busy = end.pop("_machine")[0] - self._start["_machine"][0]
        self.used = {k: v[0] - self._start[k][0] for k, v in end.items()}
        self.waited = {k: v[1] - self._start[k][1] for k, v in end.items()}

    def add(self, name: str, cpu: float, wait: float) -> None:
        self.used[name] = self.used.get(name, 0.0) + cpu
        self.waited[name] = self.waited.get(name, 0.0) + wait

    def lines(self, per: int, unit: str) -> list[str]:
        cores = os.cpu_count() or 1
        ours = sum(self.used.values())
        out = [
            f"| process(es) | CPU s | cores busy | ms CPU per {unit} | s runnable, waiting for a CPU |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, used in sorted(self.used.items(), key=lambda kv: -kv[1]):
            wait = self.waited.get(name, math.nan)
            out.append(
                f"| {name} | {used:.2f} | {used / self.wall:.2f} | {used / max(per, 1) * 1000:.2f} | "
                f"{'n/a' if math.isnan(wait) else f'{wait:.2f}'} |"
            )
        other = self.machine_busy - ours
        out.append(f"| everything else on the machine | {max(other, 0):.2f} | {max(other, 0) / self.wall:.2f} | | |")
        out.append(
            f"| **machine total** ({cores} CPUs) | {self.machine_busy:.2f} | "
            f"{self.machine_busy / self.wall:.2f} of {cores} | | |"
        )
        return out


# --- profiles -------------------------------------------------------------------------------------


def profile_lines(path: Path, top: int = 10) -> list[str]:
    """Top functions by own time from a cProfile dump, as a Markdown table."""
    stats = pstats.Stats(str(path))
    total = stats.total_tt or 1e-9
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = filename
        for marker in ("/site-packages/", str(ROOT) + "/", "/lib/python3"):
            if marker in short:
                short = short.split(marker, 1)[1]
                break
        rows.append((tt, ct, nc, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    out = ["| function | calls | own s | own share | cumulative s |", "|---|---:|---:|---:|---:|"]
    for tt, ct, nc, name in rows[:top]:
        out.append(f"| `{name}` | {nc:,} | {tt:.2f} | {tt / total:.0%} | {ct:.2f} |")
    return out


def _bucket(filename: str, func: str) -> str:
    if filename == "~":
        if "socket" in func and any(w in func for w in ("send", "recv")):
            return "socket send/recv (syscalls)"
        if "epoll" in func or "select" in func:
            return "epoll (syscall)"
        if "pydantic_core" in func:
            return "pydantic (validation, serialization)"
        if any(w in func for w in ("_asyncio", "_contextvars", "_heapq", "collections.deque")):
            return "asyncio (event loop, tasks, transports)"
        if "hashlib" in func or "_hmac" in func:
            return "hashing (sha256, hmac)"
        if "json" in func:
            return "json"
        return "other C built-ins (isinstance, len, dict, str, ...)"
    if "/site-packages/" in filename:
        return filename.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(str(ROOT) + "/"):
        parts = filename[len(str(ROOT)) + 1 :].split("/")
        return "project: " + ".".join(parts[:2]).removesuffix(".py")
    if "/asyncio/" in filename:
        return "asyncio (event loop, tasks, transports)"
    return "stdlib: " + Path(filename).stem


def profile_buckets(path: Path, top: int = 10) -> list[str]:
    """Own CPU time of a cProfile dump grouped by package, as a Markdown table."""
    stats = pstats.Stats(str(path))
    total = stats.total_tt or 1e-9
    buckets: dict[str, float] = {}
    for (filename, _line, func), v in stats.stats.items():  # type: ignore[attr-defined]
        key = _bucket(filename, func)
        buckets[key] = buckets.get(key, 0.0) + v[2]
    out = ["| where (own CPU time, by package) | s | share |", "|---|---:|---:|"]
    for key, tt in sorted(buckets.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"| {key} | {tt:.2f} | {tt / total:.0%} |")
    return out


def profile_total(path: Path) -> float:
    return pstats.Stats(str(path)).total_tt  # type: ignore[attr-defined]


def profile_cumulative(path: Path, names: dict[str, str]) -> list[str]:
    """Cumulative time of selected functions (label -> 'file-substring:function')."""
    stats = pstats.Stats(str(path))
    total = stats.total_tt or 1e-9
    out = []
    for label, spec in names.items():
        file_part, func = spec.rsplit(":", 1)
        ct = sum(
            v[3]
            for (filename, _line, f), v in stats.stats.items()  # type: ignore[attr-defined]
            if f == func and file_part in filename
        )
        out.append(f"{label} {ct:.2f} s ({ct / total:.0%})")
    return out


# --- machine and RESULTS.md --------------------------------------------------------------------


def machine_line(machine: dict[str, str], load_after: str) -> str:
    return (
        f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), Linux {machine['kernel']}; PostgreSQL "
        f"{machine['postgres']} ({machine['pg_settings']}); RabbitMQ {machine['rabbitmq']} at {machine['broker']}; "
        f"Python {machine['python']}. Services, database, broker and load generator all share these CPUs. Load "
        f"average (1 min) before the run {machine['load_before']}, after it {load_after}: above ~0.5 before, other "
        "work was running on the machine and the figures are noisier and lower than on an idle one (the CPU "
        "tables below show how much of the machine that other work took)."
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


# === the ingest benchmark ======================================================================

HEADING = "## Ingest"
MARKER = "ingest"
PG_NAME = "PostgreSQL (bench backends + server processes)"
RABBIT_NAME = "RabbitMQ (the broker process)"


@dataclass(frozen=True)
class Config:
    mode: str
    clients: int
    warmup: float
    seconds: float
    pgbench_seconds: int
    diag_seconds: float
    profile_seconds: float
    client: str = "wrk"  # the load generator: "wrk" or "python" (aiohttp in the bench process)


FULL = Config("full", clients=50, warmup=3, seconds=15, pgbench_seconds=10, diag_seconds=6, profile_seconds=6)
QUICK = Config("quick", clients=50, warmup=1, seconds=5, pgbench_seconds=4, diag_seconds=3, profile_seconds=3)


def sale_body(reference: str) -> bytes:
    """A 2-line manual invoice, as a client would send it."""
    return json.dumps(
        {
            "reference": reference,
            "type": "invoice",
            "date": "2026-02-01",
            "customer": "Bench Customer",
            "lines": [
                {"sku": "A", "quantity": "1", "unit_price": "10.50", "description": "Widget"},
                {"sku": "B", "quantity": "2", "unit_price": "3.25", "description": "Gadget"},
            ],
        }
    ).encode()


@dataclass
class LoadResult:
    seconds: float
    accepted: int
    statuses: dict[int, int]
    percentiles: dict[int, float]  # seconds, of the accepted requests: 50 and 99
    #: Requests the client may have left unanswered at the end (wrk stops with one in flight per
    #: connection; the service may still write them): the sales written are accepted + 0..this.
    abandoned_max: int = 0

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    def p(self, q: int) -> float:
        return self.percentiles[q]


async def closed_loop(
    session: aiohttp.ClientSession, url: str, headers: dict, clients: int, seconds: float, prefix: str
) -> LoadResult:
    """``clients`` clients, each sending its next sale as soon as the previous one is answered;
    the run lasts until the last request started before ``seconds`` is answered."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            body = sale_body(f"{prefix}{next(counter):08d}")
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
            elapsed = time.perf_counter() - started
            statuses[status] = statuses.get(status, 0) + 1
            if status == 202:
                latencies.append(elapsed)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return LoadResult(seconds, statuses.get(202, 0), statuses, {q: percentile(latencies, q) for q in (50, 99)})


async def wrk_loop(url: str, key: str, clients: int, seconds: float, prefix: str) -> LoadResult:
    """The same closed loop driven by wrk (bench/common.py ``run_wrk``). Up to one request
    per connection is in flight when wrk stops; the service may still write those
    (``abandoned_max``)."""
    try:
        run = await run_wrk(url, key, clients, seconds, 202, prefix=prefix)
    except RuntimeError as exc:
        raise BenchError(str(exc)) from exc
    return LoadResult(run.seconds, run.answered, run.statuses, {50: run.p50, 99: run.p99}, abandoned_max=clients)


async def http_phase(
    pool,
    cfg: Config,
    key: str,
    prefix: str,
    logdir: Path,
    name: str,
    warmup: float,
    seconds: float,
    pool_max: int | None = None,
    profile: bool = False,
) -> dict:
    """Start an ingest subprocess, warm it up, load it for ``seconds`` (CPU metered, or
    profiled), wait for its relay to empty the outbox, stop it."""
    port = free_port()
    logpath = logdir / f"ingest-{name}.log"
    logfile = await asyncio.to_thread(open, logpath, "wb")  # closed in the finally below
    prof = logdir / f"ingest-{name}.prof" if profile else None
    extra = {"DB_POOL_MAX": str(pool_max)} if pool_max else {}
    env = service_env(DATABASE_URL=SERVICE_URL, AMQP_URL=AMQP_URL, BROKER_PREFIX=prefix, INGEST_PORT=port, **extra)
    processes = []
    out: dict = {"log": logpath, "profile": prof}
    try:
        base = f"http://127.0.0.1:{port}"
        connector = aiohttp.TCPConnector(limit=cfg.clients + 5)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            processes.append(await spawn("services.ingest", env, logfile, prof))
            await wait_http(session, f"{base}/readyz", processes[0], "the ingest service", logpath)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            url = f"{base}/api/v1/sales"
            run_id = uuid.uuid4().hex[:6]
            if cfg.client == "wrk":
                out["warmup"] = await wrk_loop(url, key, cfg.clients, warmup, f"W{run_id}-")
                load = wrk_loop(url, key, cfg.clients, seconds, f"M{run_id}-")
            else:
                out["warmup"] = await closed_loop(session, url, headers, cfg.clients, warmup, f"W{run_id}-")
                load = closed_loop(session, url, headers, cfg.clients, seconds, f"M{run_id}-")
            if prof is not None:
                out["load"], out["profile"] = await profile_window(processes[0], prof, load)
            else:
                pids = await postgres_pids(pool, URL(DATABASE_URL).path.lstrip("/"))
                meter = CpuMeter(
                    {"ingest service": [p.pid for p in processes], PG_NAME: pids, RABBIT_NAME: broker_pids()},
                    children="load generator (wrk)" if cfg.client == "wrk" else None,
                )
                meter.start()
                out["load"] = await load
                meter.stop()
                out["cpu"] = meter
            started = time.perf_counter()
            while await pool.fetchval("SELECT count(*) FROM outbox") > 0:
                if time.perf_counter() - started > 120:
                    raise BenchError("the outbox did not drain within 120 s (relay stuck?)")
                await asyncio.sleep(0.05)
            out["relay_lag"] = time.perf_counter() - started
    finally:
        await stop_processes(processes)
        logfile.close()
    for what in ("warmup", "load"):
        if set(out[what].statuses) != {202}:
            raise BenchError(f"{name} {what}: answers other than 202: {out[what].statuses}; see {logpath}")
    return out


def _pgbench_latencies(pglog: Path) -> list[float]:
    """The per-transaction latencies (s) of pgbench's ``--log`` files, sorted."""
    return sorted(
        int(parts[2]) / 1e6
        for path in pglog.glob("tx*")
        for parts in (line.split() for line in path.read_text().splitlines())
        if len(parts) >= 3
    )


async def run_pgbench(
    pool: asyncpg.Pool, tenant: uuid.UUID, sale_json: str, event_json: str, clients: int, seconds: int, logdir: Path
) -> dict:
    binary = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    if not await asyncio.to_thread(os.path.exists, binary):
        raise BenchError("pgbench not found: apt-get install -y postgresql-client")
    url = URL(SERVICE_URL)  # as the service connects: the script scopes each transaction to the tenant
    database = url.path.lstrip("/")
    pglog = Path(tempfile.mkdtemp(prefix=f"pgbench-{clients}-", dir=logdir))
    cmd = [
        binary,
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        "2",
        "-T",
        str(seconds),
        "-f",
        str(PGBENCH_SCRIPT),
        "-D",
        f"tenant={tenant}",
        "-D",
        f"sale_body={sale_json}",
        "-D",
        f"event_body={event_json}",
        "-l",
        "--log-prefix",
        str(pglog / "tx"),
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.user,
        database,
    ]
    before = await pool.fetchval("SELECT count(*) FROM manual_sales WHERE tenant_id = $1", tenant)
    logged_before = await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant)
    server_pids = await postgres_pids(pool, "")  # the server's own processes only
    meter = CpuMeter({PG_NAME: server_pids, RABBIT_NAME: broker_pids()}, include_self=False, children="pgbench")
    meter.start()
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    backend_cpu: dict[int, tuple[float, float]] = {}

    async def sample_backends() -> None:  # pgbench's backends are new: all their CPU is this run's
        while proc.returncode is None:
            for row in await pool.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgbench'", database
            ):
                sched = _proc_sched(row["pid"])
                if sched is not None:
                    backend_cpu[row["pid"]] = sched
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample_backends())
    stdout, stderr = await proc.communicate()
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    meter.stop()
    meter.add(PG_NAME, sum(c for c, _ in backend_cpu.values()), sum(w for _, w in backend_cpu.values()))
    text = stdout.decode() + stderr.decode()
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    if proc.returncode != 0 or not tps or not done or (failed and int(failed.group(1))):
        raise BenchError(f"pgbench failed ({proc.returncode}):\n{text}")
    rows = await pool.fetchval("SELECT count(*) FROM manual_sales WHERE tenant_id = $1", tenant) - before
    logged = await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant) - logged_before
    transactions = int(done.group(1))
    latencies = await asyncio.to_thread(_pgbench_latencies, pglog)
    if rows != transactions or logged != transactions or abs(len(latencies) - transactions) > clients:
        raise BenchError(
            f"pgbench did not do its work: {transactions} transactions, {rows} sale rows, "
            f"{logged} logged events, {len(latencies)} logged latencies"
        )
    # baseline rows only: never to be published by a later ingest run's relay
    await pool.execute("DELETE FROM outbox o USING event_log e WHERE e.seq = o.seq AND e.tenant_id = $1", tenant)
    return {
        "tps": float(tps.group(1)),
        "transactions": transactions,
        "latencies": latencies,
        "cpu": meter,
        "clients": clients,
        "seconds": seconds,
    }


async def check_writes(pool, tenant: uuid.UUID, prefix: str, before: int, run: dict) -> int:
    """Every accepted write is one sale row, one logged event and one queued message, and
    nothing else was written (but the requests wrk abandoned in flight at the end, which
    the service may still have written). Returns the tenant's sales now."""
    accepted = run["warmup"].accepted + run["load"].accepted
    slack = run["warmup"].abandoned_max + run["load"].abandoned_max
    rows = await pool.fetchval("SELECT count(*) FROM manual_sales WHERE tenant_id = $1", tenant)
    events = await pool.fetchval(
        "SELECT count(*) FROM event_log WHERE tenant_id = $1 AND event_type = 'sale.upserted'", tenant
    )
    queued = await queue_messages(broker.Names(prefix).costing_queue)
    if not before + accepted <= rows <= before + accepted + slack or events != rows or queued != rows:
        raise BenchError(
            f"{before + accepted} writes accepted (+ up to {slack} abandoned in flight), but {rows} manual_sales "
            f"rows, {events} logged events and {queued} messages in {prefix}.costing"
        )
    return int(rows)


async def run(cfg: Config, write: bool, profile: bool) -> int:
    begun = time.perf_counter()
    log(f"ingest bench, {cfg.mode} mode: database {DATABASE_URL}, services as {URL(SERVICE_URL).user}")
    from services.ingest.admin import create_tenant  # the service's own admin code

    await recreate_bench_database(DATABASE_URL)
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=4)  # the owner's: set-up, inspection
    prefix = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    logdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    checks: list[str] = []
    r: dict = {}
    try:
        machine = await machine_info(pool, AMQP_URL)
        log(f"machine: {machine}")
        async with pool.acquire() as conn:
            tenant, key = await create_tenant(conn, "bench-ingest-http", "USD")
            pg_tenant, _ = await create_tenant(conn, "bench-ingest-pgbench", "USD")

        log(f"1. ingest subprocess, {cfg.clients} clients: {cfg.warmup:.0f} s warm-up, {cfg.seconds:.0f} s measured")
        main_run = await http_phase(pool, cfg, key, prefix, logdir, "main", cfg.warmup, cfg.seconds)
        http: LoadResult = main_run["load"]
        answered = main_run["warmup"].accepted + http.accepted
        total = await check_writes(pool, tenant, prefix, 0, main_run)
        abandoned = (
            f" and {total - answered} requests wrk abandoned in flight at the end of a run (at most one per "
            "connection; the service wrote them)"
            if total > answered
            else ""
        )
        checks.append(
            f"Every request was answered 202 ({answered:,} incl. warm-up in run 1); the bench tenant then had "
            f"{total:,} `manual_sales` rows (the answered ones{abandoned}), as many `sale.upserted` events "
            f"in `event_log`, the outbox drained and the broker queue `{prefix}.costing` (no consumer) held as "
            "many messages. The same counts were checked after every later HTTP run."
        )
        r["http"], r["http_cpu"], r["relay_lag"] = http, main_run["cpu"], main_run["relay_lag"]
        log(
            f"   {http.rate:,.0f} accepted writes/s; p50 {http.p(50) * 1000:.1f} ms, p99 {http.p(99) * 1000:.1f} ms; "
            f"outbox drained {r['relay_lag']:.2f} s after the last answer"
        )
        sale_json = await pool.fetchval("SELECT body::text FROM manual_sales WHERE tenant_id = $1 LIMIT 1", tenant)
        event_json = await pool.fetchval(
            "SELECT convert_from(body, 'UTF8') FROM event_log WHERE tenant_id = $1 LIMIT 1", tenant
        )
        r["sizes"] = (len(sale_json), len(event_json))

        log(f"2. pgbench, same transaction, {cfg.clients} clients, {cfg.pgbench_seconds} s (ingest stopped)")
        pg = await run_pgbench(pool, pg_tenant, sale_json, event_json, cfg.clients, cfg.pgbench_seconds, logdir)
        r["pgbench"] = pg
        log(f"   {pg['tps']:,.0f} tps; ratio {http.rate / pg['tps']:.3f}")

        pool_max = Settings().db_pool_max
        log(f"   diagnostic: pgbench with {pool_max} clients (the service's DB pool size), {cfg.diag_seconds:.0f} s")
        r["pgbench_pool"] = await run_pgbench(
            pool, pg_tenant, sale_json, event_json, pool_max, int(cfg.diag_seconds), logdir
        )
        log(f"   {r['pgbench_pool']['tps']:,.0f} tps")
        checks.append(
            "pgbench runs: 0 failed transactions; each transaction added exactly one `manual_sales` row "
            "and one `event_log` + `outbox` row of its tenant (ingest was stopped: nothing published "
            "them, so the relay's work is not in the baseline; the bench deleted those outbox rows "
            "afterwards so that no later ingest run would publish them)."
        )

        log(f"   diagnostic: ingest with DB_POOL_MAX={cfg.clients}, {cfg.diag_seconds:.0f} s")
        big = await http_phase(pool, cfg, key, prefix, logdir, "pool", 1.0, cfg.diag_seconds, pool_max=cfg.clients)
        total = await check_writes(pool, tenant, prefix, total, big)
        r["http_pool"] = big
        log(
            f"   {big['load'].rate:,.0f} accepted writes/s; p50 {big['load'].p(50) * 1000:.1f} ms, "
            f"p99 {big['load'].p(99) * 1000:.1f} ms"
        )

        if profile:
            log(f"3. profile: ingest under cProfile (CPU time), {cfg.profile_seconds:.0f} s of the same load")
            prof = await http_phase(pool, cfg, key, prefix, logdir, "profile", 1.0, cfg.profile_seconds, profile=True)
            total = await check_writes(pool, tenant, prefix, total, prof)
            r["profile"] = (prof["profile"], prof["load"])
    finally:
        await pool.close()
        await delete_broker_objects(prefix)
    checks.append(f"Broker queues and exchanges `{prefix}.*` deleted afterwards; every ingest subprocess stopped.")
    section = render(cfg, machine, r, checks, time.perf_counter() - begun, load_average())
    print()
    print(section)
    if write:
        write_section(HEADING, MARKER, section)
        log(f"wrote the '{HEADING}' section of {RESULTS.relative_to(ROOT)}")
    log(f"logs in {logdir}")
    return 0


def bucket_shares(path: Path) -> dict[str, float]:
    stats = pstats.Stats(str(path))
    total = stats.total_tt or 1e-9  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for (filename, _line, func), v in stats.stats.items():  # type: ignore[attr-defined]
        key = _bucket(filename, func)
        out[key] = out.get(key, 0.0) + v[2] / total
    return out


def reading(cfg: Config, r: dict, http_cpu_ms: float, pg_cpu_ms: float) -> list[str]:
    """The tables below, read together."""
    http: LoadResult = r["http"]
    big: LoadResult = r["http_pool"]["load"]
    cores = os.cpu_count() or 1
    cpu = r["http_cpu"]
    other = max(cpu.machine_busy - sum(cpu.used.values()), 0.0)
    pool = f"The service's DB pool has {Settings().db_pool_max} connections for {cfg.clients} clients"
    if big.rate > 1.1 * http.rate:
        pool_text = (
            f"{pool}; with `DB_POOL_MAX={cfg.clients}` it answered {big.rate:,.0f}/s (d2) against "
            f"{http.rate:,.0f}/s, so waiting for a pooled connection is part of the latency."
        )
    elif big.rate < 0.9 * http.rate:
        pool_text = (
            f"{pool}; `DB_POOL_MAX={cfg.clients}` did not help here ({big.rate:,.0f}/s in d2 against "
            f"{http.rate:,.0f}/s): more connections only compete for the same busy CPUs."
        )
    else:
        pool_text = (
            f"{pool}; `DB_POOL_MAX={cfg.clients}` made little difference ({big.rate:,.0f}/s in d2 "
            f"against {http.rate:,.0f}/s)."
        )
    text = (
        f"Reading: each accepted write cost {http_cpu_ms:.2f} ms of CPU in ingest + PostgreSQL + RabbitMQ "
        f"against {pg_cpu_ms:.2f} ms for pgbench's bare transaction (d3), so even with all {cores} CPUs to "
        f"itself the HTTP path would top out near {cores * 1000 / http_cpu_ms:,.0f} writes/s (the load "
        "generator aside); the ingest process alone, one event loop on one core, would allow about "
        f"{1000 / (cpu.used['ingest service'] / http.accepted * 1000):,.0f}/s. {pool_text} During the run the "
        "machine was "
        f"{cpu.machine_busy / cpu.wall:.2f} of {cores} CPUs busy, {other / cpu.wall:.2f} of them with other work."
    )
    if "profile" in r:
        shares = bucket_shares(r["profile"][0])
        top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
        amqp = sum(shares.get(k, 0.0) for k in ("pamqp", "aiormq", "aio_pika"))
        text += (
            " Inside the ingest process there is no single hot spot: the largest shares of its CPU are "
            + ", ".join(f"{k} {v:.0%}" for k, v in top)
            + f"; the relay's publishing (pamqp + aiormq + aio_pika) takes {amqp:.0%}, the service's own code "
            f"{shares.get('project: services.ingest', 0.0):.0%}."
        )
    return [text]


def render(cfg: Config, machine: dict, r: dict, checks: list[str], elapsed: float, load_after: str) -> str:
    http: LoadResult = r["http"]
    pg, pgp = r["pgbench"], r["pgbench_pool"]
    big: LoadResult = r["http_pool"]["load"]
    settings = Settings()

    ingest_ms = r["http_cpu"].used["ingest service"] / max(http.accepted, 1) * 1000
    ingest_cores = r["http_cpu"].used["ingest service"] / r["http_cpu"].wall
    ingest_wait = r["http_cpu"].waited["ingest service"]
    http_cpu_ms = sum(r["http_cpu"].used[k] for k in ("ingest service", PG_NAME, RABBIT_NAME)) / http.accepted * 1000
    pg_cpu_ms = sum(pg["cpu"].used[k] for k in (PG_NAME, "pgbench")) / pg["transactions"] * 1000

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f} ms"

    rows = [
        (
            "1a",
            f"Accepted manual-sale writes/s (POST /api/v1/sales → 202; {cfg.clients} concurrent keep-alive "
            f"clients, 2-line invoices; {http.accepted:,} writes in {http.seconds:.1f} s)",
            f"{http.rate:,.0f} /s",
        ),
        (
            "1b",
            "Latency p50 / p99 of those requests (client side, loopback); target p99 < 50 ms",
            f"{ms(http.p(50))} / {ms(http.p(99))} ({verdict(http.p(99) < 0.050)})",
        ),
        (
            "2a",
            f"pgbench, the same insert transaction, {cfg.clients} clients (`-c {cfg.clients} -j 2 -M prepared`, "
            f"{pg['seconds']} s)",
            f"{pg['tps']:,.0f} tps",
        ),
        (
            "2b",
            "pgbench transaction latency p50 / p99 (`-l` log)",
            f"{ms(percentile(pg['latencies'], 50))} / {ms(percentile(pg['latencies'], 99))}",
        ),
        (
            "2c",
            "**Ratio accepted writes/s ÷ pgbench tps**, same run; target ≥ 0.5",
            f"**{http.rate / pg['tps']:.3f}** ({verdict(http.rate / pg['tps'] >= 0.5)})",
        ),
        (
            "2d",
            "Peak RSS of the ingest service (VmHWM, all runs)",
            f"{PEAK_RSS_MIB.get('services.ingest', 0):,.0f} MiB",
        ),
    ]
    diag = [
        (
            "d1",
            f"pgbench, same transaction, {pgp['clients']} clients (= the service's DB pool size "
            f"`db_pool_max`; {pgp['seconds']} s)",
            f"{pgp['tps']:,.0f} tps (p50 {ms(percentile(pgp['latencies'], 50))}); ratio 1a ÷ this "
            f"{http.rate / pgp['tps']:.3f}",
        ),
        (
            "d2",
            f"Ingest with `DB_POOL_MAX={cfg.clients}` instead of {settings.db_pool_max} ({big.seconds:.1f} s, "
            f"{big.accepted:,} writes)",
            f"{big.rate:,.0f} /s, p50 {ms(big.p(50))}, p99 {ms(big.p(99))}",
        ),
        (
            "d3",
            "CPU per accepted write (ingest + PostgreSQL + RabbitMQ, from the tables below) vs CPU per pgbench "
            "transaction (PostgreSQL + pgbench): independent of how much CPU other work left us",
            f"{http_cpu_ms:.2f} ms vs {pg_cpu_ms:.2f} ms: ratio {pg_cpu_ms / http_cpu_ms:.3f}",
        ),
    ]
    out = [
        f"Run {time.strftime('%Y-%m-%d %H:%M %Z')} with `.venv/bin/python -m bench.ingest_bench"
        f"{' --quick' if cfg.mode == 'quick' else ''}` ({cfg.mode} mode, {elapsed:.0f} s); how it measures: "
        "[bench/README.md](README.md). Targets (issue 21): 2c ≥ 0.5, p99 (1b) < 50 ms at 50 clients. "
        f"Measured {time.strftime('%Y-%m-%d')} on a {machine['nproc']}-core {machine['cpu']}.",
        "",
        machine_line(machine, load_after),
        "",
        "| # | Figure | Value |",
        "|---|---|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "Diagnostics:",
        "",
        "| # | Figure | Value |",
        "|---|---|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in diag],
        "",
        peak_rss_text(),
        "",
        f"The ingest service ran as its own process (`python -m services.ingest`, one event loop, default "
        f"settings: DB pool {settings.db_pool_min}–{settings.db_pool_max}) with its outbox relay publishing to "
        f"RabbitMQ during the run; the {cfg.clients} clients were "
        + (
            "wrk's connections (2 threads, bench/wrk_load.lua; a C load generator like pgbench)"
            if cfg.client == "wrk"
            else "aiohttp clients in the bench process"
        )
        + ". Each accepted write is: "
        "the API key (from the process's 1-second key cache, checked again by the transaction's first statement), "
        "validation, then the group commit (services/ingest/group_commit.py): the tenant's concurrent new sales in "
        "one transaction (scope and key check, tenant read, one multi-row `manual_sales` insert, one multi-row "
        "`event_log` + `outbox` insert, commit), the answers, then the relay's claim / publish with confirm / "
        "delete of the outbox rows "
        f"(the outbox was empty {r['relay_lag']:.2f} s after the last answer). pgbench ran that transaction alone "
        f"(bench/pgbench_ingest.sql) with the row sizes of the HTTP run ({r['sizes'][0]} B `manual_sales.body`, "
        f"{r['sizes'][1]} B `event_log.body`), on the same tables, as the same database role "
        f"(`{URL(SERVICE_URL).user}`, bound by row-level security), with the ingest service stopped.",
        "",
        "### Where the time goes (ingest)",
        "",
        *reading(cfg, r, http_cpu_ms, pg_cpu_ms),
        "",
        f"CPU used during the measured HTTP run 1 ({r['http_cpu'].wall:.1f} s wall), from /proc. The ingest "
        f"process needed {ingest_ms:.2f} ms of CPU per accepted write, i.e. one full core would serve about "
        f"{1000 / ingest_ms:,.0f} writes/s; it got {ingest_cores:.2f} of a core during the run and was runnable "
        f"but waiting for a CPU for {ingest_wait:.2f} s ({ingest_wait / r['http_cpu'].wall:.0%} of the run)"
        + (
            ": the machine's CPUs were saturated"
            if r["http_cpu"].machine_busy / r["http_cpu"].wall > 0.9 * (os.cpu_count() or 1)
            else ""
        )
        + ".",
        "",
        *r["http_cpu"].lines(http.accepted, "accepted write"),
        "",
        f"The same during pgbench 2a ({pg['cpu'].wall:.1f} s wall, {pg['transactions']:,} transactions):",
        "",
        *pg["cpu"].lines(pg["transactions"], "transaction"),
    ]
    if "profile" in r:
        path, res = r["profile"]
        out += [
            "",
            f"The ingest process under cProfile with a CPU-time clock, for {res.seconds:.1f} s of the same "
            f"load ({res.accepted:,} writes, {res.rate:,.0f}/s under the profiler); cumulative CPU: "
            + "; ".join(
                profile_cumulative(
                    path,
                    {
                        "the sale handler `post_sale`": "ingest/routes.py:post_sale",
                        "of which the group commit's transactions": "ingest/group_commit.py:_transaction",
                        "API-key lookup (cache, then database)": "shared/api_keys.py:lookup",
                        "socket reads and protocol parsing (`_read_ready`)": "asyncio/selector_events.py:_read_ready",
                        "outbox relay (`OutboxRelay.run`)": "ingest/relay.py:run",
                    },
                )
            )
            + ". Own CPU time by package, then the top functions:",
            "",
            *profile_buckets(path),
            "",
            *profile_lines(path, 8),
        ]
    out += ["", "Checks made on what was measured (the run stops if one fails):", "", *[f"- {c}" for c in checks]]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (well under a minute)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run of the ingest process")
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk",
        help="load generator: wrk (C, default; apt-get installs it if missing) or aiohttp in the bench process",
    )
    args = parser.parse_args()
    cfg = dataclasses.replace(QUICK if args.quick else FULL, client=args.client)
    try:
        sys.exit(asyncio.run(run(cfg, not args.no_write, not args.no_profile)))
    except BenchError as exc:
        print(f"ingest bench: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
