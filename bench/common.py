"""What the benchmark scripts share: the machine they ran on, percentiles, and
writing one bench's section of bench/RESULTS.md without touching the others."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import time
from pathlib import Path

import aio_pika
import asyncpg
from yarl import URL

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


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
    settings = {r["name"]: r["setting"] for r in await pool.fetch(
        "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'shared_buffers', "
        "'max_connections')")}
    return {"nproc": str(os.cpu_count()), "cpu": cpu_model(), "postgres": await pool.fetchval("SHOW server_version"),
            "pg_settings": ", ".join(f"{k}={v}" for k, v in sorted(settings.items())), "rabbitmq": rabbit,
            "python": platform.python_version(), "kernel": platform.release(), "load_before": load_average(),
            "broker": f"{URL(amqp_url).host}:{URL(amqp_url).port or 5672}"}


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
