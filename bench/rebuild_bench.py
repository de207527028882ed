# ruff: noqa: ASYNC220, ASYNC221, ASYNC222, ASYNC240, E501
"""Rebuild benchmark: one tenant's costing state rebuilt from its event log.

    .venv/bin/python -m bench.rebuild_bench            # 1,000,000 sales (2,000,000 lines)
    .venv/bin/python -m bench.rebuild_bench --quick    # 20,000 sales
    .venv/bin/python -m bench.rebuild_bench --no-write # print only, leave RESULTS.md alone

Builds the tenant's event log in bulk (COPY through the owner connection): 50 products, a
lot per product and month sized to about that month's demand, 2-line sales over three
years in log order with ~10 % of them logged 1-5 days late (backdated), ~2 % edited
(version 2), ~1 % voided, ~2 % credit memos. Costs it as the live consumers would (the
log in log order, groups of 100 sale events, ``CostingService`` as the service role), takes
an order-free digest of the canonical projection (tests/projection.py: sales, lines with
allocations, lots), then times ``python -m services.costing.rebuild --tenant <id>`` from
the log to fully costed (reset included), checks the digest is identical, and times a
replay of the tenant's last day of events through the broker into a costing consumer.
Peak RSS: the rebuild process (``wait4``), the bench process, PostgreSQL's backends (their
private memory, sampled). Exit 2 when the rebuilt state differs.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aio_pika
import asyncpg

from bench.common import (
    load_average,
    machine_info,
    recreate_bench_database,
    service_url,
    subprocess_environment,
    write_section,
)
from services.costing.service import CostingService, groups
from shared import broker
from shared.db import create_pool
from shared.events import parse_event

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_REBUILD_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/partsemble_bench_rebuild"
)
AMQP_URL = os.environ.get("BENCH_AMQP_URL", os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
TARGET_SECONDS_1M = 600.0
TARGET_RATE = 1_700.0
START = date(2023, 12, 1)
DAYS = 3 * 365
SKUS = [f"SKU-{i:03d}" for i in range(50)]


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the event log ----------------------------------------------------------------------


def _body(tenant: str, event_type: str, occurred: datetime, **fields: object) -> tuple[uuid.UUID, bytes]:
    event_id = uuid.uuid4()
    doc = {
        "schema_version": 1,
        "event_id": str(event_id),
        "tenant_id": tenant,
        "occurred_at": occurred.isoformat(),
        "correlation_id": None,
        "event_type": event_type,
        **fields,
    }
    return event_id, json.dumps(doc, separators=(",", ":")).encode()


def generate(tenant_id: uuid.UUID, sales: int, seed: int = 1):
    """The tenant's log rows in log order: (event_id, tenant, type, source, occurred_at,
    recorded_at, body). A heap holds the events logged later than their day (bounded by
    the 5-day delay), so memory does not grow with the history."""
    rnd = random.Random(seed)
    tenant = str(tenant_id)
    weights = [1 / (i + 1) ** 0.6 for i in range(len(SKUS))]
    total_w = sum(weights)
    per_day = sales / DAYS
    # Units per product and month: 2 lines of mean 3 units per sale.
    monthly = {s: per_day * 30.4 * 2 * 3.0 * w / total_w for s, w in zip(SKUS, weights, strict=True)}
    pending: list[tuple[datetime, int, str, str, bytes, uuid.UUID, datetime]] = []
    n = 0

    def push(recorded: datetime, event_type: str, body: tuple[uuid.UUID, bytes], occurred: datetime) -> None:
        nonlocal n
        n += 1
        heapq.heappush(pending, (recorded, n, event_type, "manual", body[1], body[0], occurred))

    t0 = datetime.combine(START, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    for sku in SKUS:
        push(
            t0, "product.upserted", _body(tenant, "product.upserted", t0, sku=sku, name=f"Product {sku}", version=1), t0
        )
    made = 0
    for day in range(DAYS):
        d = START + timedelta(days=day)
        midnight = datetime.combine(d, datetime.min.time(), tzinfo=UTC)
        if d.day == 1:
            for sku in SKUS:
                qty = max(1, round(monthly[sku] * rnd.uniform(0.9, 1.12)))
                lot = {
                    "sku": sku,
                    "lot_number": f"L{d:%Y%m}",
                    "quantity": str(qty),
                    "unit_cost": f"{rnd.uniform(2, 40):.2f}",
                    "received_at": midnight.isoformat(),
                    "version": 1,
                }
                push(midnight, "lot.received", _body(tenant, "lot.received", midnight, **lot), midnight)
        todays = round(per_day * (day + 1)) - made if day < DAYS - 1 else sales - made
        for _ in range(max(0, todays)):
            made += 1
            entered = midnight + timedelta(seconds=rnd.randint(8 * 3600, 18 * 3600))
            recorded = entered + (timedelta(days=rnd.uniform(1, 5)) if rnd.random() < 0.10 else timedelta(0))
            credit = rnd.random() < 0.02
            skus = rnd.sample(range(len(SKUS)), 2) if not credit else [rnd.randrange(len(SKUS))]
            skus_w = [rnd.choices(range(len(SKUS)), weights)[0] for _ in skus]
            if len(skus_w) == 2 and skus_w[0] == skus_w[1]:
                skus_w[1] = (skus_w[1] + 1) % len(SKUS)
            lines = [
                {
                    "line_no": i + 1,
                    "sku": SKUS[s],
                    "description": None,
                    "quantity": str(rnd.randint(1, 5)),
                    "revenue": f"{rnd.uniform(20, 400):.2f}",
                    "kind": "inventory",
                }
                for i, s in enumerate(skus_w)
            ]
            sale = {
                "source": "manual",
                "sale_type": "credit_memo" if credit else "invoice",
                "external_id": str(made),
                "doc_number": str(made),
                "txn_date": d.isoformat(),
                "source_created_at": entered.isoformat(),
                "customer": f"Customer {rnd.randrange(200)}",
                "currency": None,
                "exchange_rate": None,
            }
            push(
                recorded,
                "sale.upserted",
                _body(tenant, "sale.upserted", recorded, version=1, lines=lines, **sale),
                recorded,
            )
            r = rnd.random()
            if r < 0.02:  # an edit: version 2 a day later, another quantity on line 1
                later = recorded + timedelta(days=rnd.uniform(0.1, 2))
                lines2 = [dict(lines[0], quantity=str(rnd.randint(1, 5))), *lines[1:]]
                push(
                    later,
                    "sale.upserted",
                    _body(tenant, "sale.upserted", later, version=2, lines=lines2, **sale),
                    later,
                )
            elif r < 0.03:  # voided a few days later
                later = recorded + timedelta(days=rnd.uniform(0.1, 3))
                removal = {k: sale[k] for k in ("source", "sale_type", "external_id")}
                push(
                    later,
                    "sale.removed",
                    _body(tenant, "sale.removed", later, reason="voided", version=2, **removal),
                    later,
                )
        end_of_day = midnight + timedelta(days=1)
        while pending and pending[0][0] < end_of_day:
            recorded, _, event_type, source, body, event_id, occurred = heapq.heappop(pending)
            yield (event_id, tenant_id, event_type, source, occurred, recorded, body)
    while pending:
        recorded, _, event_type, source, body, event_id, occurred = heapq.heappop(pending)
        yield (event_id, tenant_id, event_type, source, occurred, recorded, body)


async def load_log(pool: asyncpg.Pool, tenant_id: uuid.UUID, sales: int) -> int:
    """COPY the generated log in chunks; returns the number of events."""
    columns = ["event_id", "tenant_id", "event_type", "source", "occurred_at", "recorded_at", "body"]
    chunk: list[tuple[object, ...]] = []
    count = 0
    async with pool.acquire() as conn:
        for row in generate(tenant_id, sales):
            chunk.append(row)
            if len(chunk) >= 50_000:
                await conn.copy_records_to_table("event_log", records=chunk, columns=columns)
                count += len(chunk)
                chunk = []
        if chunk:
            await conn.copy_records_to_table("event_log", records=chunk, columns=columns)
            count += len(chunk)
        for r in await conn.fetch(
            "SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY random() LIMIT 200", tenant_id
        ):
            parse_event(bytes(r["body"]))  # the bodies are valid events
        await conn.execute("ANALYZE event_log")
    return count


# --- costing the log as the live consumers do -------------------------------------------


async def cost_live(owner: asyncpg.Pool, service: asyncpg.Pool, tenant_id: uuid.UUID, size: int) -> tuple[int, float]:
    """Apply the log in log order in groups of ``size`` (the consumer's ``COSTING_BATCH_SIZE``), as
    the service role; returns (events, seconds)."""
    svc = CostingService(service)
    started, done, last = time.monotonic(), 0, time.monotonic()
    async with owner.acquire() as conn, conn.transaction():
        batch = []
        async for row in conn.cursor(
            "SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY seq", tenant_id, prefetch=2000
        ):
            batch.append(parse_event(bytes(row["body"])))
            if len(batch) >= size:
                for group in groups(batch, size):
                    await svc.apply_group(group)
                done += len(batch)
                batch = []
                if time.monotonic() - last > 15:
                    last = time.monotonic()
                    log(f"  live costing: {done:,} events, {done / (last - started):,.0f}/s")
        for group in groups(batch, size):
            await svc.apply_group(group)
        done += len(batch)
    return done, time.monotonic() - started


# The canonical projection (tests/projection.py) as an order-free digest: a sum of row
# hashes and a count per part; numbers compared by value (trim_scale), flags as a set.
DIGEST = """
SELECT 'sales' AS part, count(*) AS n, coalesce(sum(hashtextextended(concat_ws('|', source, type, external_id, status,
       version, trim_scale(revenue), trim_scale(cost), has_shortage), 0)::numeric), 0) AS h
FROM sales WHERE tenant_id = $1
UNION ALL
SELECT 'lines', count(*), coalesce(sum(hashtextextended(concat_ws('|', s.source, s.type, s.external_id, l.line_no, l.kind,
       trim_scale(l.quantity), trim_scale(l.revenue), trim_scale(l.cost), trim_scale(l.shortage_qty),
       (SELECT string_agg(f, ',' ORDER BY f) FROM unnest(l.flags) f),
       (SELECT string_agg(lot.lot_number || '=' || trim_scale(a.quantity), ',' ORDER BY lot.lot_number)
        FROM allocations a JOIN lots lot ON lot.id = a.lot_id WHERE a.line_id = l.id)), 0)::numeric), 0)
FROM sale_lines l JOIN sales s ON s.id = l.sale_id WHERE l.tenant_id = $1
UNION ALL
SELECT 'lots', count(*), coalesce(sum(hashtextextended(concat_ws('|', p.sku, lot.lot_number, trim_scale(lot.quantity),
       trim_scale(lot.unit_cost), trim_scale(lot.remaining)), 0)::numeric), 0)
FROM lots lot JOIN products p ON p.id = lot.product_id WHERE lot.tenant_id = $1"""


async def digest(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> dict[str, tuple[int, str]]:
    async with pool.acquire() as conn:
        await conn.execute("SET work_mem = '64MB'")
        return {r["part"]: (r["n"], str(r["h"])) for r in await conn.fetch(DIGEST, tenant_id)}


# --- memory -------------------------------------------------------------------------------


def postgres_private_kib() -> int:
    """The largest private memory (RssAnon) of any PostgreSQL process now, in KiB."""
    worst = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if "\nName:\tpostgres" not in "\n" + status:
            continue
        for line in status.splitlines():
            if line.startswith("RssAnon:"):
                worst = max(worst, int(line.split()[1]))
    return worst


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def run_rebuild(tenant_id: uuid.UUID, logfile: Path) -> tuple[float, int, int, int, list[str]]:
    """Time the command; (seconds, exit code, its peak RSS KiB, PostgreSQL's peak private
    KiB, its progress lines)."""
    env = subprocess_environment(DATABASE_URL, DATABASE_OWNER_URL=DATABASE_URL, PYTHONUNBUFFERED="1", LOG_LEVEL="INFO")
    started = time.monotonic()
    with logfile.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.costing.rebuild", "--tenant", str(tenant_id)],
            cwd=str(ROOT),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        pg_peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            pg_peak = max(pg_peak, postgres_private_kib())
            await asyncio.sleep(1.0)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    progress = [line for line in logfile.read_text().splitlines() if "rebuild." in line]
    return seconds, code, usage.ru_maxrss, pg_peak, progress


async def replay_last_day(tenant_id: uuid.UUID, workdir: Path) -> tuple[int, float, float, int]:
    """Publish the tenant's last day of log through ``services.ingest.replay`` into a
    running costing consumer; (events, seconds of the command, seconds until the queue was
    drained, the consumer's peak RSS KiB)."""
    prefix = f"bench-rebuild-{uuid.uuid4().hex[:8]}"
    env = subprocess_environment(
        DATABASE_URL, AMQP_URL=AMQP_URL, BROKER_PREFIX=prefix, COSTING_PORT="0", LOG_LEVEL="WARNING"
    )
    consumer = subprocess.Popen(
        [sys.executable, "-m", "services.costing"],
        cwd=str(ROOT),
        env=env,
        stdout=(workdir / "consumer.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    connection = await aio_pika.connect(AMQP_URL)
    try:
        names = broker.Names(prefix)
        for _ in range(100):  # until the consumer declared its queue and subscribed
            try:
                channel = await connection.channel()
                q = await channel.declare_queue(names.costing_queue, passive=True)
                await channel.close()
                if q.declaration_result.consumer_count:
                    break
            except aio_pika.exceptions.ChannelClosed:  # no such queue yet: the broker closed that channel only
                pass
            await asyncio.sleep(0.2)
        async with asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=1) as pool:
            # The last day of sales (the log's own last hours hold only the late-logged few).
            since = datetime.combine(START + timedelta(days=DAYS - 1), datetime.min.time(), tzinfo=UTC)
            until = since + timedelta(days=1)
            count = await pool.fetchval(
                "SELECT count(*) FROM event_log WHERE tenant_id = $1 AND recorded_at >= $2 AND recorded_at < $3",
                tenant_id,
                since,
                until,
            )
        replay_env = dict(env, DATABASE_OWNER_URL=DATABASE_URL)
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "services.ingest.replay",
                "--tenant",
                str(tenant_id),
                "--since",
                since.isoformat(),
                "--until",
                until.isoformat(),
            ],
            cwd=str(ROOT),
            env=replay_env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        command = time.monotonic() - started
        while True:
            channel = await connection.channel()
            q = await channel.declare_queue(names.costing_queue, passive=True)
            await channel.close()
            if q.declaration_result.message_count == 0:
                break
            await asyncio.sleep(0.05)
        drained = time.monotonic() - started
        consumer_rss = rss_kib(consumer.pid)
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(15)
        channel = await connection.channel()
        await broker.delete(channel, names)
    finally:
        if consumer.poll() is None:
            consumer.kill()
        await connection.close()
    return count, command, drained, consumer_rss


# --- the run --------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--sales", type=int)
    parser.add_argument(
        "--before",
        choices=["live", "rebuild"],
        help="how the state to reproduce is costed: the live path (default up to 100,000 sales) or a first rebuild",
    )
    args = parser.parse_args()
    sales = args.sales or (20_000 if args.quick else 1_000_000)
    run_started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="rebuild-bench-"))
    log(f"rebuild bench: {sales:,} sales; logs in {workdir}")
    await recreate_bench_database(DATABASE_URL)
    owner = await create_pool(DATABASE_URL, 1, 4)
    service = await create_pool(service_url(DATABASE_URL), 1, 4)
    machine = await machine_info(owner, AMQP_URL)
    tenant_id = uuid.uuid4()
    await owner.execute("INSERT INTO tenants (id, name, home_currency) VALUES ($1, 'rebuild bench', 'USD')", tenant_id)

    t = time.monotonic()
    events = await load_log(owner, tenant_id, sales)
    load_s = time.monotonic() - t
    stats = await owner.fetchrow(
        """SELECT count(*) FILTER (WHERE event_type = 'sale.upserted') AS upserts,
                  count(*) FILTER (WHERE event_type = 'sale.removed') AS removals,
                  count(*) FILTER (WHERE event_type LIKE 'lot.%') AS lots
           FROM event_log WHERE tenant_id = $1""",
        tenant_id,
    )
    log(f"event log: {events:,} events in {load_s:.0f} s ({dict(stats)})")

    live_group = 100
    before_by = args.before or ("live" if sales <= 100_000 else "rebuild")
    if before_by == "live":
        live_events, live_s = await cost_live(owner, service, tenant_id, live_group)
        log(f"live costing (log order, groups of {live_group}): {live_events:,} events in {live_s:.0f} s")
    else:
        # The live path costs this log at a few hundred events/s on a 2-core machine (each group
        # re-costs its products' backdated tails): a first rebuild costs it instead, and the
        # timed one must reproduce it exactly (quick mode and the CI test compare with the live path).
        live_events, live_s, _, _, _ = (events, *(await run_rebuild(tenant_id, workdir / "first-rebuild.log"))[:4])
        log(f"first rebuild (the state to reproduce): {live_s:.0f} s")
    before = await digest(owner, tenant_id)
    backdated = await owner.fetchval("SELECT count(*) FROM cost_revisions WHERE tenant_id = $1", tenant_id)
    lines = before["lines"][0]
    log(f"projection: {before}; cost revisions from backdating {backdated:,}")

    load_before = load_average()
    seconds, code, rss, pg_peak, progress = await run_rebuild(tenant_id, workdir / "rebuild.log")
    load_after = load_average()
    after = await digest(owner, tenant_id)
    identical = after == before
    log(f"rebuild: {seconds:.1f} s, exit {code}, peak RSS {rss / 1024:.0f} MiB, identical {identical}")
    replay_n, replay_cmd, replay_drained, consumer_rss = await replay_last_day(tenant_id, workdir)
    log(f"replay of the last day: {replay_n} events, command {replay_cmd:.1f} s, drained {replay_drained:.1f} s")
    bench_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await owner.close()
    await service.close()

    if before_by == "live":
        before_text = (
            f"the state to reproduce costed as the live consumers do (log order, groups of {live_group} sale events, "
            f"`COSTING_BATCH_SIZE`'s default, in process) in {live_s:.0f} s ({live_events / live_s:,.0f} events/s, "
            f"{backdated:,} cost revisions from the backdated sales)"
        )
    else:
        before_text = (
            f"the state to reproduce costed by a first run of the same command ({live_s:.0f} s): the live path costs "
            "this log at a few hundred events/s here (each group re-costs its 50 products' 1-5-day backdated tails), "
            "so identity with the live path is checked in quick mode (20,000 sales) and by "
            "tests/integration/test_costing_rebuild.py"
        )
    rate = sales / seconds
    target_s = TARGET_SECONDS_1M * sales / 1_000_000
    ok_rate = rate >= TARGET_RATE
    mem_ok = max(rss, pg_peak, consumer_rss) < 1024 * 1024
    today = datetime.now(UTC)
    label = f"measured {today:%Y-%m-%d} on a {machine['nproc']}-core {machine['cpu']}"
    mode = "quick mode" if args.quick else "full mode"
    rows = [
        (
            "1",
            f"Rebuild of {sales:,} sales ({lines:,} lines, {events:,} events) from the event log to fully costed "
            f"(`python -m services.costing.rebuild`, reset included)",
            f"{seconds:.0f} s",
            f"< {target_s:.0f} s",
            "PASS" if seconds < target_s else "FAIL",
        ),
        ("1b", "Same, sales per second", f"{rate:,.0f} /s", f"≥ {TARGET_RATE:,.0f} /s", "PASS" if ok_rate else "FAIL"),
        (
            "2",
            f"Rebuilt state identical to the one before it ({before_by} path; canonical projection digest: sales, lines with "
            "allocations, lots)",
            "identical" if identical else "DIFFERENT",
            "identical",
            "PASS" if identical else "FAIL",
        ),
        (
            "3",
            f"Replay of the tenant's last day ({replay_n:,} events) through the broker into one costing consumer: "
            f"command / queue drained",
            f"{replay_cmd:.1f} s / {replay_drained:.1f} s",
            "seconds",
            "PASS" if replay_drained < 30 else "FAIL",
        ),
        (
            "4",
            "Peak RSS: rebuild process / PostgreSQL backend (private, sampled) / costing consumer / bench process",
            f"{rss / 1024:.0f} / {pg_peak / 1024:.0f} / {consumer_rss / 1024:.0f} / {bench_rss / 1024:.0f} MiB",
            "< 1,024 MiB each",
            "PASS" if mem_ok else "FAIL",
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows)
    shown = "\n".join(
        f"    {line[:200]}" for line in progress[:3] + (["    …"] if len(progress) > 6 else []) + progress[-3:]
    )
    content = f"""Run {today:%Y-%m-%d %H:%M} UTC with `.venv/bin/python -m bench.rebuild_bench{" --quick" if args.quick else ""}` ({mode}, {time.monotonic() - run_started:.0f} s); {label}, Linux {machine["kernel"]}; PostgreSQL {machine["postgres"]} ({machine["pg_settings"]}); Python {machine["python"]}. Load average (1 min) before the rebuild {load_before}, after {load_after}.

| # | Figure | Value | Target | Result |
|---|---|---:|---|---|
{table}

Diagnostics: building the log (COPY, {events:,} events: {stats["upserts"]:,} upserts, {stats["removals"]:,} removals, {stats["lots"]:,} lots; ~10 % logged 1-5 days after their date) {load_s:.0f} s; {before_text}. The rebuild reads the log once in one snapshot, applies products, lots, each sale's strongest removal, then each sale's latest version in demand order in groups of 1,000 sales per transaction (each lands at the end of its products' demand axis: no tail re-cost), then records the rest (older versions) as stale; after the reset it VACUUMs the emptied tables, then ANALYZEs the costing tables at 1k, 4k, 16k, … sales (×4) and at the end. Its progress (log lines):

```
{shown}
```
"""
    print(content)
    if not args.no_write:
        write_section("## Rebuild", "rebuild", content)
    return 0 if identical and code == 0 else 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
