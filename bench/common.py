"""What the benchmark scripts share: the machine they ran on, percentiles, writing one
bench's section of bench/RESULTS.md without touching the others, and the two database
roles of a run (docs/security.md): the BENCH_*_DATABASE_URL of each bench is the
schema owner's (dropping, migrating, bulk loads, inspection), and every service the
bench starts, as a process or in-process, connects as the service role derived from it
(``service_url``), bound by row-level security as in production."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import math
import os
import platform
import re
import secrets
import time
from pathlib import Path

import aio_pika
import asyncpg
from yarl import URL

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

#: The role the services connect as (created and granted by shared.migrate if missing).
SERVICE_ROLE = os.environ.get("BENCH_SERVICE_ROLE", "partsemble_app")


def service_url(owner_url: str) -> str:
    """The service role's URL for the owner's ``owner_url``: same server and database,
    user BENCH_SERVICE_ROLE (default ``partsemble_app``). The owner's password is not
    carried over (the role is shared by every database of the server and migrate would set
    its password to it); BENCH_SERVICE_PASSWORD gives the role's own when the server asks."""
    return str(URL(owner_url).with_user(SERVICE_ROLE).with_password(os.environ.get("BENCH_SERVICE_PASSWORD") or None))


@functools.cache
def service_secrets() -> dict[str, str]:
    """This run's secrets (nothing has a default): made fresh once per bench process."""
    return {
        "TOKEN_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "OAUTH_STATE_SECRET": secrets.token_urlsafe(48),
    }


def service_environment(owner_url: str) -> dict[str, str]:
    """What every service the bench starts gets in its environment: the service role's
    DATABASE_URL, this run's secrets, and no per-key rate limit (the load generators
    send far more than a key's default 6,000 requests/min)."""
    return {"DATABASE_URL": service_url(owner_url), "API_RATE_LIMIT_PER_MINUTE": "0", **service_secrets()}


def subprocess_environment(owner_url: str, **extra: object) -> dict[str, str]:
    """os.environ for a service subprocess: ``service_environment`` on top, and no owner
    URL (a service never holds the owner's credentials)."""
    env = dict(os.environ, **service_environment(owner_url))
    env.pop("DATABASE_OWNER_URL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def service_settings(owner_url: str, **extra: object):
    """Settings of an in-process service (or of code that must agree with the services,
    e.g. encrypting tokens with their key), as ``service_environment`` says."""
    from shared.settings import Settings

    env = service_environment(owner_url)
    return Settings(
        database_url=env["DATABASE_URL"],
        database_owner_url=owner_url,
        api_rate_limit_per_minute=0,
        token_encryption_key=env["TOKEN_ENCRYPTION_KEY"],
        oauth_state_secret=env["OAUTH_STATE_SECRET"],
        **extra,
    )


async def recreate_bench_database(owner_url: str) -> None:
    """Drop and recreate the bench database migrated, as its owner, and set up the service
    role in it (created if missing, granted what the services need)."""
    from shared.migrate import recreate_database

    await recreate_database(owner_url, service_url(owner_url))


async def migrate_bench_database(owner_url: str) -> None:
    from shared.migrate import migrate

    await migrate(owner_url, service_url(owner_url))


def load_average() -> str:
    """The 1-minute load average, as text."""
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().split()[0]
    return "unknown"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def cpu_probe_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes now: how fast this machine's CPU is
    at this moment (on a shared virtual machine it varies during a run)."""
    started = time.perf_counter()
    total = 0
    for k in range(1_000_000):
        total += k * k
    return (time.perf_counter() - started) * 1000


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


async def machine_info(pool: asyncpg.Pool, amqp_url: str) -> dict[str, str]:
    """CPUs, kernel, PostgreSQL and RabbitMQ versions and settings, load before the run."""
    rabbit = "unknown"
    with contextlib.suppress(Exception):
        conn = await aio_pika.connect(amqp_url, timeout=10)
        try:
            value = conn.transport.connection.server_properties.get("version", "unknown")
            rabbit = value.decode() if isinstance(value, bytes) else str(value)
        finally:
            await conn.close()
    settings = {
        r["name"]: r["setting"]
        for r in await pool.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'shared_buffers', "
            "'max_connections')"
        )
    }
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "postgres": await pool.fetchval("SHOW server_version"),
        "pg_settings": ", ".join(f"{k}={v}" for k, v in sorted(settings.items())),
        "rabbitmq": rabbit,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_before": load_average(),
        "broker": f"{URL(amqp_url).host}:{URL(amqp_url).port or 5672}",
    }


def write_section(heading: str, marker: str, content: str) -> None:
    """Read-modify-write of RESULTS.md that replaces only this bench's block (between its
    markers, under its heading) and leaves every other section as it is."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{content.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text and end in text and text.index(start) < text.index(end):
        i, j = text.index(start), text.index(end) + len(end)
        text = text[:i] + block + text[j:]
    else:
        section = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
        if section.search(text):  # the heading without markers: take the section over
            text = section.sub(lambda _m: f"{heading}\n\n{block}\n\n", text, count=1)
        else:
            text = text.rstrip("\n") + f"\n\n{heading}\n\n{block}\n"
    RESULTS.write_text(text.rstrip("\n") + "\n")


#: The peak resident set (VmHWM, MiB) of each kind of process a bench started, by module
#: (``services.costing``…), noted just before it is stopped (``note_peak_rss``).
PEAK_RSS_MIB: dict[str, float] = {}


def note_peak_rss(pid: int) -> None:
    """Record a live child's peak RSS under the module it runs (``python -m <module>``)."""
    with contextlib.suppress(OSError, ValueError):
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"-m" in args:
            name = args[args.index(b"-m") + 1].decode()
        elif b"-c" in args:  # the benches' profiled wrapper: python -c <code> <profile path> <module>
            name = args[-2].decode() if args[-1] == b"" else args[-1].decode()
        else:
            name = Path(args[0].decode()).name
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                PEAK_RSS_MIB[name] = max(PEAK_RSS_MIB.get(name, 0.0), int(line.split()[1]) / 1024)


def peak_rss_text() -> str:
    """``- Peak RSS …`` line for a bench's diagnostics: every process it started, and itself."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parts = [f"`{name}` {mib:,.0f} MiB" for name, mib in sorted(PEAK_RSS_MIB.items())]
    return f"- Peak RSS (VmHWM) of each process: {', '.join([*parts, f'the bench process {own:,.0f} MiB'])}."


def ensure_tool(command: str, package: str) -> str:
    """The path of ``command``; if the machine lacks it, install Debian's ``package`` with
    apt-get (as the benches' pgbench comes from postgresql-client). Exits with a clear
    message where that is not possible."""
    import shutil
    import subprocess
    import sys

    found = shutil.which(command)
    if found:
        return found
    print(f"bench: {command} is missing; installing Debian's {package} with apt-get", flush=True)
    result = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", package],
        capture_output=True,
        check=False,
    )
    found = shutil.which(command)
    if result.returncode != 0 or not found:
        sys.exit(f"bench: could not install {package} (apt-get exit {result.returncode}); see bench/README.md")
    return found


WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_load.lua"


@dataclasses.dataclass(frozen=True)
class WrkRun:
    """One wrk run (bench/wrk_load.lua): answers as expected / other statuses, duration,
    latency percentiles (seconds) and the CPU seconds wrk used."""

    answered: int
    statuses: dict[int, int]
    seconds: float
    p50: float
    p99: float
    cpu: float


async def run_wrk(
    url: str, key: str, clients: int, seconds: float, expect: int, paths: list[str] | None = None, prefix: str = "R-"
) -> WrkRun:
    """A closed loop of ``clients`` keep-alive connections on 2 threads (like pgbench's
    ``-j 2``) for ``seconds`` (whole seconds, at least 1): wrk, a load generator in C, so the
    clients take about as little of the shared CPUs as pgbench's do. With ``paths``, GETs
    of them in turn; else POSTs of new manual sales. wrk stops at the deadline with up to
    one request per connection in flight (unanswered, not counted)."""
    import asyncio
    import json
    import tempfile

    wrk = ensure_tool("wrk", "wrk")
    env = dict(os.environ, WRK_AUTH=f"Bearer {key}", WRK_EXPECT=str(expect), WRK_PREFIX=prefix)
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=True) as listing:
        if paths is not None:
            listing.write("\n".join(paths) + "\n")
            listing.flush()
            env["WRK_PATHS"] = listing.name
        before = os.times()
        process = await asyncio.create_subprocess_exec(
            wrk,
            "-t2",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "--timeout=60s",
            f"--script={WRK_SCRIPT}",
            url,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        after = os.times()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.decode(errors='replace')[-500:]}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    errors = {k: summary[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts") if summary[k]}
    if errors:
        raise RuntimeError(f"wrk: socket errors {errors}")
    statuses = {expect: summary["requests"] - summary["unexpected"]}
    for status in summary["statuses"].split():
        statuses[int(status)] = statuses.get(int(status), 0) + 1
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return WrkRun(
        statuses[expect],
        statuses,
        summary["duration_us"] / 1e6,
        summary["p50_us"] / 1e6,
        summary["p99_us"] / 1e6,
        cpu,
    )
