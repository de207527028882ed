"""Query service benchmark: ``.venv/bin/python -m bench.query_bench [--quick] [--no-write]``.

On its own fresh database (``partsemble_bench_query``: dropped, created, migrated)
it loads, with set-based SQL through the real schema (every trigger fires, so the
rollup tables are kept by 0003_query.sql itself), 1,000,000 sales of about 3 lines
each for one tenant plus 10 other tenants of 10,000 sales (100,000 with
``--quick``), then runs ``python -m services.query`` as a subprocess and drives it
with 20 concurrent keep-alive aiohttp clients, one scenario at a time: the first
page of the sales list (unfiltered, by customer, by a 1-month date range, by sku,
sorted by margin), a deep page via cursor, a sale's detail, and product margins over
one year. It prints
p50/p99 latency and requests/s per scenario against the targets (list and detail
p99 < 50 ms, margins p99 < 200 ms) and rewrites the "## Query service" section of
bench/RESULTS.md. When a target is missed it adds the EXPLAIN ANALYZE of the
scenario's statements. A benchmark, not a test: it fails (exit 2) only when what it
measured is wrong (non-200 answers, a summary that differs from a direct SUM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import random
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
from yarl import URL

from bench.common import (
    WrkRun,
    load_average,
    migrate_bench_database,
    note_peak_rss,
    peak_rss_text,
    percentile,
    recreate_bench_database,
    run_wrk,
    service_url,
    subprocess_environment,
    write_section,
)
from services.ingest.admin import create_tenant
from services.query import rollups, summaries, views
from services.query.app import query_dsn
from services.query.views import SalesQuery
from shared.db import tenant_setting_sql

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
SECTION = "## Query service"

# The owner's URL (drop, migrate, bulk load, inspection); the query service, the rollup
# folding after the load and the EXPLAINs connect as the service role (bench/common.py).
DATABASE_URL = os.environ.get("BENCH_QUERY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/partsemble_bench_query")
SERVICE_URL = service_url(DATABASE_URL)

CLIENTS = 20
OTHER_TENANTS = 10
OTHER_SALES = 10_000
PRODUCTS = 50
CUSTOMERS = 200
D0 = date(2023, 12, 1)  # sales dated D0 .. D0 + DAYS - 1 (3 years)
DAYS = 1096
MONTHS = 37  # one lot per product and month
TARGET_LIST_MS = 50.0
TARGET_MARGINS_MS = 200.0

FIRST = [
    "Acme",
    "Bluewater",
    "Cedar",
    "Delta",
    "Evergreen",
    "Falcon",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Keystone",
    "Lakeside",
    "Maple",
    "Northwind",
    "Orion",
    "Pioneer",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidewater",
]
SECOND = [
    "Marine",
    "Hydraulics",
    "Builders",
    "Auto Parts",
    "Machining",
    "Farm Supply",
    "Electric",
    "Plumbing",
    "Fleet Services",
    "Robotics",
]


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def customer_names() -> list[str]:
    names = [
        f"{FIRST[i % 20]} {SECOND[i // 20]} {'Inc' if i % 3 == 0 else 'LLC' if i % 3 == 1 else 'Co'}"
        for i in range(CUSTOMERS)
    ]
    assert len(set(names)) == CUSTOMERS
    return names


# --- load ------------------------------------------------------------------------------------

STAGE_SALES = """
CREATE UNLOGGED TABLE bench_stage_sales AS
SELECT g.id, random_public_id() AS pid, t.idx AS tenant_idx, t.id AS tenant_id,
       ($1::date + least({days} - 1, greatest(0, ((g.n - 1)::numeric * {days} / t.nsales)::int
                                          + floor(random() * 7)::int - 3))) AS day,
       floor(random() * {customers})::int AS cust,
       1 + floor(random() * 5)::int AS nlines,
       CASE WHEN r1 < 0.02 THEN 'voided' WHEN r1 < 0.025 THEN 'deleted' ELSE 'posted' END AS status,
       CASE WHEN r2 < 0.85 THEN 'invoice' WHEN r2 < 0.95 THEN 'sales_receipt' ELSE 'credit_memo' END AS type,
       CASE WHEN r3 < 0.9 THEN 'quickbooks' ELSE 'manual' END AS source,
       g.n
FROM bench_tenants t
CROSS JOIN LATERAL (SELECT t.first_id + n - 1 AS id, n, random() AS r1, random() AS r2, random() AS r3
                    FROM generate_series(1, t.nsales) n) g"""

STAGE_LINES = """
CREATE UNLOGGED TABLE bench_stage_lines AS
SELECT x.*,
       round(CASE WHEN x.posted THEN x.sign * x.qty * x.price ELSE 0 END, 2) AS revenue,
       round(CASE WHEN x.posted AND x.product IS NOT NULL THEN x.sign * (x.qty - x.short) * x.ucost ELSE 0 END, 2)
           AS cost,
       round(x.sign * x.qty * x.price, 2) AS gross,
       (x.posted AND x.sign = 1 AND x.product IS NOT NULL) AS in_demand
FROM (
    SELECT s.id AS sale_id, s.pid AS sale_pid, s.tenant_id, s.tenant_idx, s.day, s.source, s.type, s.status, l.line_no,
           s.status = 'posted' AS posted,
           CASE WHEN s.type = 'credit_memo' THEN -1 ELSE 1 END AS sign,
           p.product, 1 + floor(random() * 10)::int AS qty,
           CASE WHEN p.product IS NULL THEN 15.00 ELSE 20 + (p.product * 37 % 180) END AS price,
           CASE WHEN p.product IS NULL THEN 0 ELSE round((20 + (p.product * 37 % 180)) * 0.62, 4) END AS ucost,
           0 AS short, random() < 0.25 AS split
    FROM bench_stage_sales s
    CROSS JOIN LATERAL generate_series(1, s.nlines) l(line_no)
    CROSS JOIN LATERAL (SELECT CASE WHEN random() < 0.05 THEN NULL
                                    ELSE floor({products} * power(random(), 1.6))::int END + 0 * l.line_no AS product) p
) x"""

# ~3 % of the inventory lines of posted invoices/receipts are (partly) short.
STAGE_SHORTAGES = """
UPDATE bench_stage_lines SET short = greatest(1, qty / 2),
       cost = round((qty - greatest(1, qty / 2)) * ucost, 2)
WHERE in_demand AND random() < 0.03"""

INSERT_SALES = """
INSERT INTO sales (id, tenant_id, source, type, external_id, status, version, doc_number, txn_date,
                   source_created_at, customer, currency, exchange_rate, revenue, cost, has_shortage,
                   created_at, updated_at)
SELECT s.pid, s.tenant_id, s.source, s.type, 'X' || s.n, s.status, 1, 'D-' || (100000 + s.n), s.day,
       s.day + time '09:00' + (s.n % 28800) * interval '1 second', c.name, 'USD', 1,
       a.revenue, a.cost, a.short, now(), now()
FROM bench_stage_sales s
JOIN bench_customers c ON c.idx = s.cust
JOIN (SELECT sale_id, sum(revenue) AS revenue, sum(cost) AS cost, bool_or(short > 0) AS short
      FROM bench_stage_lines WHERE sale_id BETWEEN $1 AND $2 GROUP BY sale_id) a ON a.sale_id = s.id
WHERE s.id BETWEEN $1 AND $2
ORDER BY s.id"""

INSERT_LINES = """
INSERT INTO sale_lines (id, tenant_id, sale_id, line_no, sku, product_id, description, kind, quantity, revenue, cost,
                        shortage_qty, shortage_cost, costed, in_demand, txn_date, source_created_at, source,
                        external_id, sale_type, candidate, gross_revenue)
SELECT l.sale_id * 8 + l.line_no, l.tenant_id, l.sale_pid, l.line_no,
       CASE WHEN l.product IS NULL THEN NULL ELSE 'SKU-' || lpad(l.product::text, 3, '0') END,
       CASE WHEN l.product IS NULL THEN NULL ELSE l.tenant_idx * 100 + l.product + 1 END,
       CASE WHEN l.product IS NULL THEN 'Freight' ELSE 'Part ' || l.product END,
       CASE WHEN l.product IS NULL THEN 'shipping' ELSE 'inventory' END,
       l.qty, l.revenue, l.cost, l.short, round(l.short * l.ucost, 2), true, l.in_demand, l.day,
       l.day + time '09:00', l.source, 'X' || (l.sale_id), l.type, l.product IS NOT NULL, l.gross
FROM bench_stage_lines l
WHERE l.sale_id BETWEEN $1 AND $2
ORDER BY l.sale_id, l.line_no"""

# FIFO-shaped allocations: the lot of the sale's month, a quarter of the lines split with
# the next month's lot; the short part of a line has none.
INSERT_ALLOCATIONS = """
INSERT INTO allocations (tenant_id, line_id, lot_id, quantity)
SELECT l.tenant_id, l.sale_id * 8 + l.line_no, a.lot, a.q
FROM bench_stage_lines l
CROSS JOIN LATERAL (SELECT mm.month, l.split AND l.qty - l.short > 1 AND mm.month < {months} - 1 AS split
                    FROM (SELECT (extract(year FROM age(l.day, $3::date)) * 12
                                  + extract(month FROM age(l.day, $3::date)))::int AS month) mm) m
CROSS JOIN LATERAL (
    SELECT (l.tenant_idx * 100 + l.product) * 40 + m.month + 1 AS lot,
           CASE WHEN m.split THEN (l.qty - l.short) / 2 ELSE l.qty - l.short END AS q
    UNION ALL
    SELECT (l.tenant_idx * 100 + l.product) * 40 + m.month + 2, (l.qty - l.short) - (l.qty - l.short) / 2
    WHERE m.split) a
WHERE l.sale_id BETWEEN $1 AND $2 AND l.in_demand AND l.qty > l.short"""


@dataclass
class Loaded:
    big_tenant: str
    big_key: str
    big_sales: int
    sales: int = 0
    lines: int = 0
    allocations: int = 0
    seconds: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)
    popular_sku: str = ""
    popular_sku_lines: int = 0
    customer_substring: str = ""
    customer_sales: int = 0
    sku_sales: int = 0


async def reset_database() -> None:
    assert URL(DATABASE_URL).path.lstrip("/").startswith("partsemble_bench"), (
        "refusing to drop a database that is not a bench database"
    )
    await recreate_bench_database(DATABASE_URL)


async def load(big_sales: int) -> Loaded:
    t_all = time.perf_counter()
    conn = await asyncpg.connect(DATABASE_URL)
    steps: list[tuple[str, float]] = []

    async def step(name: str, sql: str, *args) -> str:
        t = time.perf_counter()
        status = await conn.execute(sql, *args)
        steps.append((name, time.perf_counter() - t))
        log(f"  {name}: {status} ({steps[-1][1]:.1f} s)")
        return status

    try:
        await conn.execute("SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'")
        await conn.execute("SELECT setseed(0.4242)")
        tenants = []
        big_id, big_key = await create_tenant(conn, "Bench big tenant", "USD")
        tenants.append((0, big_id, 1, big_sales))
        first = big_sales + 1
        for i in range(1, OTHER_TENANTS + 1):
            tid, _key = await create_tenant(conn, f"Bench tenant {i}", "USD")
            tenants.append((i, tid, first, OTHER_SALES))
            first += OTHER_SALES
        await conn.execute("CREATE UNLOGGED TABLE bench_tenants (idx int, id uuid, first_id bigint, nsales int)")
        await conn.executemany("INSERT INTO bench_tenants VALUES ($1, $2, $3, $4)", tenants)
        await conn.execute("CREATE UNLOGGED TABLE bench_customers (idx int PRIMARY KEY, name text)")
        await conn.executemany("INSERT INTO bench_customers VALUES ($1, $2)", list(enumerate(customer_names())))
        await step(
            "products",
            f"""
            INSERT INTO products (id, tenant_id, sku, defined, name, wac, has_cost_basis)
            SELECT t.idx * 100 + p + 1, t.id, 'SKU-' || lpad(p::text, 3, '0'), true, 'Part ' || p,
                   round((20 + (p * 37 % 180)) * 0.62, 4), true
            FROM bench_tenants t CROSS JOIN generate_series(0, {PRODUCTS - 1}) p""",
        )
        await step(
            "lots",
            f"""
            INSERT INTO lots (id, tenant_id, product_id, lot_number, quantity, unit_cost, received_at, version,
                              remaining)
            SELECT (t.idx * 100 + p) * 40 + m + 1, t.id, t.idx * 100 + p + 1, 'L' || lpad(m::text, 3, '0'),
                   100000, round((20 + (p * 37 % 180)) * 0.62, 4),
                   ($1::date + m * interval '1 month')::timestamptz, 1, CASE WHEN m >= {MONTHS} - 2 THEN 5000 ELSE 0 END
            FROM bench_tenants t CROSS JOIN generate_series(0, {PRODUCTS - 1}) p
            CROSS JOIN generate_series(0, {MONTHS - 1}) m""",
            D0 - (date(2023, 12, 1) - date(2023, 11, 1)),
        )
        await step("stage sales", STAGE_SALES.format(days=DAYS, customers=CUSTOMERS), D0)
        await step("stage lines", STAGE_LINES.format(products=PRODUCTS))
        await step("stage shortages", STAGE_SHORTAGES)
        await conn.execute(
            "CREATE INDEX ON bench_stage_lines (sale_id); ANALYZE bench_stage_sales; ANALYZE bench_stage_lines"
        )
        total = first - 1
        chunk = 250_000
        ranges = [(a, min(a + chunk - 1, big_sales)) for a in range(1, big_sales + 1, chunk)]
        ranges.append((big_sales + 1, total))
        for a, b in ranges:
            await step(f"sales {a}-{b}", INSERT_SALES, a, b)
            await step(f"sale_lines {a}-{b}", INSERT_LINES, a, b)
            await step(
                f"allocations {a}-{b}",
                INSERT_ALLOCATIONS.format(months=MONTHS),
                a,
                b,
                D0 - (date(2023, 12, 1) - date(2023, 11, 1)),
            )
        await conn.execute(
            "SELECT setval('sale_lines_id_seq', (SELECT max(id) FROM sale_lines)); "
            "SELECT setval('lots_id_seq', (SELECT max(id) FROM lots)); "
            "SELECT setval('products_id_seq', (SELECT max(id) FROM products))"
        )
        # the customer filter: one customer's full distinctive name part (~0.5 % of sales)
        sub = f"{FIRST[7]} {SECOND[0]}"  # "Harbor Marine"
        popular = await conn.fetchrow("""
            SELECT 'SKU-' || lpad(product::text, 3, '0') AS sku, count(*) AS n FROM bench_stage_lines
            WHERE tenant_idx = 0 AND product IS NOT NULL GROUP BY product ORDER BY 2 DESC LIMIT 1""")
        await step("drop staging", "DROP TABLE bench_stage_lines, bench_stage_sales, bench_customers, bench_tenants")
        t = time.perf_counter()
        pool = await asyncpg.create_pool(SERVICE_URL, min_size=1, max_size=2)  # as the service folds
        folded = await rollups.fold_all(pool, batch=200_000)
        await pool.close()
        steps.append(("fold rollup deltas", time.perf_counter() - t))
        log(f"  folded {folded:,} rollup deltas ({steps[-1][1]:.1f} s)")
        await step("vacuum analyze", "VACUUM ANALYZE")
        counts = await conn.fetchrow("""SELECT (SELECT count(*) FROM sales) AS sales,
            (SELECT count(*) FROM sale_lines) AS lines, (SELECT count(*) FROM allocations) AS allocations""")
        loaded = Loaded(
            str(big_id),
            big_key,
            big_sales,
            counts["sales"],
            counts["lines"],
            counts["allocations"],
            time.perf_counter() - t_all,
            steps,
            popular["sku"],
            popular["n"],
            sub,
        )
        loaded.customer_sales = await conn.fetchval(
            "SELECT count(*) FROM sales WHERE tenant_id = $1 AND customer ILIKE $2", big_id, f"%{sub}%"
        )
        loaded.sku_sales = await conn.fetchval(
            "SELECT count(DISTINCT sale_id) FROM sale_lines WHERE tenant_id = $1 AND sku = $2", big_id, popular["sku"]
        )
        return loaded
    finally:
        await conn.close()


async def remember(loaded: Loaded) -> None:
    """Keep what was loaded in the bench database, for ``--reuse``."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute("CREATE TABLE bench_loaded (loaded jsonb NOT NULL)")
        await conn.execute("INSERT INTO bench_loaded VALUES ($1::text::jsonb)", json.dumps(dataclasses.asdict(loaded)))
    finally:
        await conn.close()


async def reused(big_sales: int) -> Loaded | None:
    """The data a previous run loaded with the same size (migrated to the current schema),
    or None when there is none."""
    try:
        conn = await asyncpg.connect(DATABASE_URL)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        if await conn.fetchval("SELECT to_regclass('bench_loaded')") is None:
            return None
        raw = json.loads(await conn.fetchval("SELECT loaded::text FROM bench_loaded"))
    finally:
        await conn.close()
    if raw["big_sales"] != big_sales:
        return None
    await migrate_bench_database(DATABASE_URL)
    raw["steps"] = [tuple(s) for s in raw["steps"]]
    return Loaded(**raw)


async def check_load(loaded: Loaded) -> list[str]:
    """The data as the service will see it: what the rollups hold equals direct sums."""
    problems: list[str] = []
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        direct = await conn.fetchrow(
            "SELECT count(*) AS count, sum(revenue) AS revenue, sum(cost) AS cost FROM sales WHERE tenant_id = $1",
            loaded.big_tenant,
        )
        sql, args = views.sales_summary_statement(uuid.UUID(loaded.big_tenant), SalesQuery({}))
        rolled = await conn.fetchrow(sql, *args)
        if tuple(direct) != tuple(rolled):
            problems.append(f"sales_totals {tuple(rolled)} != direct SUM over sales {tuple(direct)}")
        bad = await conn.fetchval("""
            SELECT count(*) FROM (
                SELECT s.tenant_id, s.id, s.revenue, s.cost FROM sales s
                EXCEPT SELECT l.tenant_id, l.sale_id, sum(l.revenue), sum(l.cost) FROM sale_lines l GROUP BY 1, 2) x""")
        if bad:
            problems.append(f"{bad} sales whose revenue/cost is not the sum of their lines")
        pdirect = await conn.fetch(
            """
            SELECT l.product_id, sum(l.revenue) AS revenue, sum(l.cost) AS cost, count(*) AS lines
            FROM sale_lines l JOIN sales s ON s.id = l.sale_id
            WHERE l.tenant_id = $1 AND s.status = 'posted' AND l.kind = 'inventory' GROUP BY 1 ORDER BY 1""",
            loaded.big_tenant,
        )
        prolled = await conn.fetch(
            """
            SELECT product_id, sum(revenue) AS revenue, sum(cost) AS cost, sum(lines) AS lines
            FROM (SELECT tenant_id, product_id, revenue, cost, lines FROM product_totals UNION ALL
                  SELECT tenant_id, product_id, revenue, cost, lines FROM product_totals_delta) t
            WHERE tenant_id = $1 GROUP BY 1 HAVING sum(lines) <> 0 ORDER BY 1""",
            loaded.big_tenant,
        )
        if [tuple(r) for r in pdirect] != [tuple(r) for r in prolled]:
            problems.append("product_totals differ from a direct SUM over the posted inventory lines")
    finally:
        await conn.close()
    return problems


# --- the service and the load generator ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def query_service():
    port = free_port()
    env = subprocess_environment(DATABASE_URL, QUERY_PORT=port, LOG_LEVEL="WARNING")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.query", cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                if proc.returncode is not None:
                    raise RuntimeError(f"the query service exited with {proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/readyz") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the query service did not become ready")
        yield base, proc
    finally:
        note_peak_rss(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass
class Scenario:
    key: str
    title: str
    target_ms: float
    next_url: object  # callable() -> path with query
    query: SalesQuery | None = None  # for EXPLAIN when the target is missed
    kind: str = "list"


@dataclass
class Result:
    scenario: Scenario
    latencies: list[float]
    seconds: float
    errors: int
    service_cpu: float = 0.0  # CPU seconds of the query service process during the measured run
    db_cpu: float = 0.0  # CPU seconds of its PostgreSQL backends
    client_cpu: float = 0.0  # CPU seconds of the load generator (this process)
    single_p50: float = float("nan")  # p50 with one client alone (no queueing)
    wrk: WrkRun | None = None  # the run's figures when wrk drove it (latencies then stays empty)

    @property
    def count(self) -> int:
        return self.wrk.answered if self.wrk is not None else len(self.latencies)

    @property
    def p50(self) -> float:
        return self.wrk.p50 * 1000 if self.wrk is not None else percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return self.wrk.p99 * 1000 if self.wrk is not None else percentile(self.latencies, 99)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def passed(self) -> bool:
        return self.p99 < self.scenario.target_ms


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


async def backend_pids(conn: asyncpg.Connection) -> list[int]:
    return [
        r[0]
        for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'partsemble-query'"
        )
    ]


async def drive(
    session: aiohttp.ClientSession,
    base: str,
    headers: dict,
    sc: Scenario,
    seconds: float,
    warmup: float,
    clients: int = CLIENTS,
    service_pid: int = 0,
    db: asyncpg.Connection | None = None,
) -> Result:
    latencies: list[float] = []
    errors = 0
    state = {"measure": False, "stop": False}

    async def client() -> None:
        nonlocal errors
        while not state["stop"]:
            path = sc.next_url()
            t = time.perf_counter()
            async with session.get(base + path, headers=headers) as r:
                await r.read()
                ok = r.status == 200
            dt = (time.perf_counter() - t) * 1000
            if state["measure"] and not state["stop"]:
                if ok:
                    latencies.append(dt)
                else:
                    errors += 1
            elif not ok:
                errors += 1

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(warmup)
    pids = await backend_pids(db) if db is not None else []
    db0 = {p: proc_cpu(p) for p in pids}
    svc0, me0 = proc_cpu(service_pid) if service_pid else 0.0, time.process_time()
    state["measure"] = True
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    state["stop"] = True
    elapsed = time.perf_counter() - t0
    svc1, me1 = proc_cpu(service_pid) if service_pid else 0.0, time.process_time()
    pids = await backend_pids(db) if db is not None else []
    db_cpu = sum(proc_cpu(p) - db0.get(p, 0.0) for p in pids)
    await asyncio.gather(*tasks)
    return Result(sc, latencies, elapsed, errors, svc1 - svc0, db_cpu, me1 - me0)


#: Paths wrk cycles through per scenario (drawn from the scenario's own generator).
WRK_PATHS = 20_000


async def drive_wrk(
    base: str, key: str, sc: Scenario, seconds: float, warmup: float, service_pid: int, db: asyncpg.Connection
) -> Result:
    """``drive`` with wrk as the load generator (bench/common.py ``run_wrk``): CLIENTS
    connections GET the scenario's paths (WRK_PATHS of them, drawn from ``sc.next_url``
    beforehand) in turn; a warm-up run, then the measured one, metered as ``drive`` does,
    the load generator's CPU being wrk's."""
    paths = [sc.next_url() for _ in range(WRK_PATHS)]
    await run_wrk(base + "/", key, CLIENTS, warmup, 200, paths)
    pids = await backend_pids(db)
    db0 = {p: proc_cpu(p) for p in pids}
    svc0 = proc_cpu(service_pid)
    run = await run_wrk(base + "/", key, CLIENTS, seconds, 200, paths)
    svc1 = proc_cpu(service_pid)
    pids = await backend_pids(db)
    db_cpu = sum(proc_cpu(p) - db0.get(p, 0.0) for p in pids)
    errors = sum(n for status, n in run.statuses.items() if status != 200)
    return Result(sc, [], run.seconds, errors, svc1 - svc0, db_cpu, run.cpu, wrk=run)


async def get_json(session, base, headers, path) -> dict:
    async with session.get(base + path, headers=headers) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body}")
        return body


def months_between(first: date, last: date) -> list[tuple[date, date]]:
    out = []
    y, m = first.year, first.month
    while True:
        start = date(y, m, 1)
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        end = date.fromordinal(date(ny, nm, 1).toordinal() - 1)
        if end > last:
            break
        if start >= first:
            out.append((start, end))
        y, m = ny, nm
    return out


# --- explain ------------------------------------------------------------------------------------


async def explain(loaded: Loaded, sc: Scenario) -> str:
    tenant = uuid.UUID(loaded.big_tenant)
    if sc.kind == "list":
        statement = views.sales_list_statement(tenant, sc.query)
        name, sql, args, generic = "list (page and summary)", statement.sql, statement.args, statement.generic
    else:
        name, generic = "margins", True
        sql, args = summaries.product_margins(tenant, *sc.query)
    # As the service runs it: the service role, in a read-only repeatable-read transaction
    # scoped to the tenant (shared/db.py tenant_read), so the plan has the RLS policy's condition.
    conn = await asyncpg.connect(query_dsn(SERVICE_URL, generic=generic))
    try:
        await conn.execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {tenant_setting_sql(tenant)}")
        plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
        return f"{name}:\n" + "\n".join(r[0] for r in plan)
    finally:
        await conn.close()


# --- results ------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"


ROLLUP_TEXT = """How the targets are met (indexes and rollups in shared/migrations/0003_query.sql and
0007_query_rollups.sql; the statements in services/query/views/ and summaries.py).
Every index starts with `tenant_id`, so the big tenant's and the small tenants' rows
never mix in a scan. A list request is one statement: the page and the summary of the
whole filtered set in one round trip and one snapshot.

- **List pages** are keyset pages: `ORDER BY <sort key> DESC, id DESC LIMIT n+1` with
  `(key, id) < (cursor key, cursor id)` for a cursor. One b-tree per sort,
  `sales_q_date (tenant_id, coalesce(txn_date,'-infinity'), id)` (and `sales_q_revenue`;
  for cost, margin and margin %, the indexes of the narrow `sale_cost_keys`, joined to the
  sale: migration 0012), gives the
  page as a backward index range scan that stops after n+1 rows, so a deep page costs
  what the first one does (no OFFSET). A date range is a range of the same index. The
  cost keys of sales the costing engine has just re-costed are marked stale and folded
  by the query service (0014); until then the page reads those few sales' keys from the
  sales themselves and merges them in, in the same statement.
- **Customer substring, by date**: the few matching names are found in `customer_names`
  (one row per customer of the tenant, trigram-indexed) plus the unfolded customer
  deltas; for each name, its newest n+1 sales come from
  `sales_q_customer_date (tenant_id, customer, date key, id)`; the pages are merged. Other
  sorts with a customer filter use the trigram GIN index `sales_q_customer_trgm`.
- **Sku, by date**: the first n + 1 distinct (date, sale) of the sku's lines, one range of
  `sale_lines_q_sku_day (tenant_id, sku, date key, sale_id)` (a line carries its sale's
  date: the auditor's I12), then those sales by primary key (views/sales_list.py
  `SKU_DATE_PAGE`): a page costs the same for a common and a rare sku.
- **The list summary** (count, revenue, cost) never sums the sales when a rollup covers
  the filters: with no filter (or only status, type, source, shortage) it reads
  `sales_totals_all` (per tenant × status × type × source × has_shortage: a few dozen
  rows); with a date range, whole months from `sales_totals_month` and only the days at
  the range's two edges from the daily `sales_totals` (a year is 12 × a few dozen rows
  instead of 365 ×); with a customer substring, the matching names' rows of
  `customer_totals` by primary key; with a sku, its rows of `sku_totals`, which counts a
  sale once per distinct sku of its lines. Each adds its unfolded `*_delta` rows.
  Combinations no rollup covers (customer with dates, sku with dates, external id,
  margin %) sum the matching sales through the filter indexes.
- **Product margins** read whole months from `product_totals_month` and the edge days
  from `product_totals` (per tenant, day, product: lines, quantities, revenue, cost,
  shortage of the inventory lines of posted sales) plus `product_totals_delta`: a
  12-month window is 12 × 50 rows, not 365 × 50.
- **Sale detail** is five primary-key / `(sale_id, …)` index lookups in one read-only
  repeatable-read transaction (sale, lines by `UNIQUE (sale_id, line_no)`, allocations by
  their primary key `(line_id, lot_id)`, versions, cost revisions).
- **Exactness**: the rollups are kept by statement-level AFTER triggers on `sales` and
  `sale_lines` (transition tables) that only append signed deltas in the writing
  transaction; the query service folds each batch of deltas into every grain (day,
  month, all time) in one transaction every second (services/query/rollups.py), and
  readers add base and deltas in one snapshot, so every change counts exactly once.
  `sale_skus` records under which skus each sale is counted; every statement on
  `sale_lines` reconciles it with the lines of the sales it touched (idempotent, so an
  `INSERT … ON CONFLICT` firing two triggers stays exact). tests/integration/
  test_query_rollups.py compares every grain with direct aggregates under concurrent
  costing, folding, resets and raw multi-trigger statements.
- **CPU per request** is what decides the p99 with 20 clients on 2 CPUs (queueing): the
  presenters format numbers in the wide decimal context by name (no context switch per
  value), statements whose plan does not depend on the values (date pages with their
  rollup summary, by date with a customer substring or a sku, unfiltered by a cost key,
  margins, detail) run as generic plans on a second pool instead of being planned at
  every request (planning the customer or sku page cost more than running it), with no
  parallel workers (a generic plan guesses a LIMIT at a tenth of the rows; on the
  lowest-margin page that guess started two workers, 5 ms a request), and
  aiohttp gets its server settings (they used to be dropped with a warning, which also
  left access logging on)."""


def render(
    loaded: Loaded,
    results: list[Result],
    explains: dict[str, str],
    args,
    started: datetime,
    wall: float,
    load_before: str,
    load_after: str,
    checks: list[str],
) -> str:
    mode = "quick" if args.quick else "full"
    cmd = ".venv/bin/python -m bench.query_bench" + (" --quick" if args.quick else "")
    out = [
        f"Run {started:%Y-%m-%d %H:%M} UTC with `{cmd}` ({mode} mode, {wall:.0f} s); how it measures: "
        "[bench/README.md](README.md).",
        "",
        f"Machine: {machine()}; {loaded_pg_version}. The query service (one process, default settings: "
        "DB pool 1–10), PostgreSQL and the 20 load-generating clients share these CPUs. Load average (1 min) "
        f"before the measured runs {load_before}, after {load_after} (above ~0.5 before: other work was running "
        "on the machine, so the figures are noisier than on an idle one).",
        "",
        f"Data: {loaded.sales:,} sales, {loaded.lines:,} sale lines, {loaded.allocations:,} allocations in "
        f"{OTHER_TENANTS + 1} tenants: the measured tenant has {loaded.big_sales:,} sales "
        f"(≈{loaded.lines / loaded.sales:.1f} lines each, {CUSTOMERS} customers, {PRODUCTS} skus, "
        f"3 years {D0} … {date.fromordinal(D0.toordinal() + DAYS - 1)}, "
        "2 % voided, 0.5 % deleted, 5 % credit memos, ~3 % of inventory lines short, allocations to 1–2 monthly lots); "
        f"{OTHER_TENANTS} other tenants {OTHER_SALES:,} sales each. **Load time {loaded.seconds:.0f} s** "
        "(set-based `INSERT … SELECT` from staged `generate_series` rows, in chunks of 250,000 sales, through every "
        "index, foreign key and rollup trigger; then folding the rollup deltas and `VACUUM ANALYZE`):",
        ", ".join(f"{n} {s:.0f} s" for n, s in loaded.steps) + ".",
        "",
        f"Requests: {CLIENTS} concurrent keep-alive clients ("
        + ("wrk, 2 threads, bench/wrk_load.lua" if args.client == "wrk" else "aiohttp, in the bench process")
        + f"), {args.seconds:g} s per scenario after "
        f"{args.warmup:g} s of warm-up, client-side latency over loopback, all answers 200.",
        "",
        "| Scenario | p50 | p99 | req/s | Target (p99) | Result |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in results:
        out.append(
            f"| {r.scenario.title} | {r.p50:.1f} ms | {r.p99:.1f} ms | {r.rate:,.0f} | "
            f"< {r.scenario.target_ms:.0f} ms | {'PASS' if r.passed else '**FAIL**'} |"
        )
    out += [
        "",
        "Diagnostics, same runs: CPU per request from /proc (the query service process, its PostgreSQL "
        "backends, the load generator), and the capacity it implies for the machine's "
        f"{os.cpu_count()} CPUs if nothing else ran; and the p50 with a single client alone (no queueing):",
        "",
        "| Scenario | service CPU /req | PostgreSQL CPU /req | client CPU /req | ⇒ max req/s on all CPUs | "
        "p50, 1 client |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        n = max(1, r.count)
        total = (r.service_cpu + r.db_cpu + r.client_cpu) / n * 1000
        cap = (os.cpu_count() or 1) * 1000 / total if total else float("nan")
        out.append(
            f"| {r.scenario.key} | {r.service_cpu / n * 1000:.2f} ms | {r.db_cpu / n * 1000:.2f} ms | "
            f"{r.client_cpu / n * 1000:.2f} ms | {cap:,.0f} | {r.single_p50:.1f} ms |"
        )
    out += [
        "",
        reading(results),
        "",
        "Filters used: customer substring "
        f"`{loaded.customer_substring}` (matches {loaded.customer_sales:,} sales = "
        f"{100 * loaded.customer_sales / loaded.big_sales:.2f} %); sku `{loaded.popular_sku}`, the most popular one "
        f"({loaded.popular_sku_lines:,} lines, in {loaded.sku_sales:,} sales = "
        f"{100 * loaded.sku_sales / loaded.big_sales:.1f} %); date range: a random whole month each request; "
        "deep page: the cursors of pages 50–59 of the unfiltered list (followed once beforehand), pages fetched "
        "from them in turn; margin: the unfiltered list sorted by margin, lowest first (through the "
        "folded sort keys, 0014_cost_keys_folded.sql); detail: a random sale id of the tenant; margins: a "
        "random 12-month window each request (sorted by margin).",
        "",
        "Checks: " + "; ".join(checks) + ".",
        "",
        ROLLUP_TEXT,
    ]
    if explains:
        out += [
            "",
            "### Where the time goes (missed targets)",
            "",
            "`EXPLAIN (ANALYZE, BUFFERS)` of the scenario's statements, run alone (no concurrent load) with "
            "the service's session settings (services/query/app.py `query_dsn`). The list route runs the "
            "page and the summary as one statement.",
        ]
        for key, text in explains.items():
            out += ["", f"**{key}**", "", "```", text, "```"]
    return "\n".join(out) + "\n"


loaded_pg_version = "PostgreSQL ?"


def reading(results: list[Result]) -> str:
    """Which misses are queueing on a saturated machine and which are a slow statement."""
    cpus = os.cpu_count() or 1
    queued, slow = [], []
    for r in results:
        if r.passed:
            continue
        if r.single_p50 < r.scenario.target_ms / 2:
            queued.append(r)
        else:
            slow.append(r)
    lines = [peak_rss_text(), "", "Reading:"]
    if queued:
        lines.append(
            "- "
            + ", ".join(f"{r.scenario.key}" for r in queued)
            + ": each request alone takes "
            + ", ".join(f"{r.single_p50:.1f}" for r in queued)
            + " ms (p50, 1 client), well inside the target; "
            "the p99 under 20 clients is queueing. By Little's law the mean latency with 20 requests in flight is "
            "20 ÷ throughput, and the throughput is bounded by the CPU per request (table above) on "
            f"{cpus} CPUs shared by the service, PostgreSQL, the load generator and whatever else runs: the list "
            "page needs ≥ 400 req/s for a 50 ms mean, i.e. ≤ "
            f"{cpus * 1000 / 400:.1f} ms of CPU per request in total, before any p99 tail."
        )
    if slow:
        lines.append(
            "- "
            + ", ".join(f"{r.scenario.key}" for r in slow)
            + ": slow even alone ("
            + ", ".join(f"{r.single_p50:.1f}" for r in slow)
            + " ms p50 with 1 client): the statement itself "
            "costs that much; its plan is below."
        )
    if len(lines) == 1:
        lines.append("- every target met.")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


async def run(args) -> int:
    global loaded_pg_version
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    big = 100_000 if args.quick else 1_000_000
    loaded = await reused(big) if args.reuse else None
    if loaded is None:
        log(f"resetting {URL(DATABASE_URL).path.lstrip('/')} and migrating")
        await reset_database()
        log(f"loading {big:,} sales for the big tenant + {OTHER_TENANTS} × {OTHER_SALES:,}")
        loaded = await load(big)
        await remember(loaded)
    else:
        log(f"reusing the {loaded.big_sales:,}-sale database loaded before (--reuse)")
    log(
        f"loaded {loaded.sales:,} sales, {loaded.lines:,} lines, {loaded.allocations:,} allocations "
        f"in {loaded.seconds:.1f} s"
    )
    problems = await check_load(loaded)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        loaded_pg_version = (
            "PostgreSQL "
            + await conn.fetchval("SHOW server_version")
            + " ("
            + ", ".join(
                f"{r['name']}={r['setting']}"
                for r in await conn.fetch(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', "
                    "'effective_cache_size', 'max_parallel_workers_per_gather') ORDER BY name"
                )
            )
            + ")"
        )
        direct = await conn.fetchrow(
            "SELECT count(*) AS count, sum(revenue) AS revenue, sum(cost) AS cost FROM sales WHERE tenant_id = $1",
            loaded.big_tenant,
        )
        sku_direct = await conn.fetchrow(
            """
            SELECT count(*) AS count, sum(revenue) AS revenue, sum(cost) AS cost FROM sales s
            WHERE s.tenant_id = $1 AND EXISTS (SELECT 1 FROM sale_lines l
                                               WHERE l.sale_id = s.id AND l.tenant_id = s.tenant_id AND l.sku = $2)""",
            loaded.big_tenant,
            loaded.popular_sku,
        )
        cust_direct = await conn.fetchrow(
            "SELECT count(*) AS count, sum(revenue) AS revenue FROM sales WHERE tenant_id = $1 AND customer ILIKE $2",
            loaded.big_tenant,
            f"%{loaded.customer_substring}%",
        )
        year_direct = await conn.fetchval(
            """
            SELECT sum(l.revenue) FROM sale_lines l JOIN sales s ON s.id = l.sale_id
            WHERE l.tenant_id = $1 AND s.status = 'posted' AND l.kind = 'inventory'
              AND l.txn_date BETWEEN '2025-01-01' AND '2025-12-31'""",
            loaded.big_tenant,
        )
        sale_ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM sales WHERE tenant_id = $1 ORDER BY random() LIMIT 20000", loaded.big_tenant
            )
        ]
    finally:
        await conn.close()

    headers = {"Authorization": f"Bearer {loaded.big_key}"}
    checks = []
    rng = random.Random(7)
    months = months_between(D0, date.fromordinal(D0.toordinal() + DAYS - 1))
    results: list[Result] = []
    explains: dict[str, str] = {}
    log("starting the query service")
    async with query_service() as (base, _proc):
        connector = aiohttp.TCPConnector(limit=CLIENTS + 5)
        async with aiohttp.ClientSession(connector=connector) as session:
            # what the service answers equals direct SQL
            first = await get_json(session, base, headers, "/api/v1/sales")
            s = first["summary"]
            if (s["count"], Decimal(s["revenue"]), Decimal(s["cost"])) != (
                direct["count"],
                round(direct["revenue"], 2),
                round(direct["cost"], 2),
            ):
                problems.append(f"list summary {s} != direct SUM over sales {dict(direct)}")
            else:
                checks.append(
                    f"the unfiltered list summary of the big tenant ({s['count']:,} sales, revenue "
                    f"{s['revenue']}) equals a direct `count/SUM` over its sales"
                )
            if len(first["items"]) != 50 or first["next_cursor"] is None:
                problems.append("the first page does not have 50 items and a cursor")
            c = (
                await get_json(
                    session, base, headers, f"/api/v1/sales?customer={loaded.customer_substring.replace(' ', '%20')}"
                )
            )["summary"]
            if (c["count"], Decimal(c["revenue"])) != (cust_direct["count"], round(cust_direct["revenue"], 2)):
                problems.append(f"customer-filtered summary {c} != direct {dict(cust_direct)}")
            else:
                checks.append("the customer-filtered summary equals a direct `count/SUM … ILIKE`")
            k = (await get_json(session, base, headers, f"/api/v1/sales?sku={loaded.popular_sku}"))["summary"]
            if (k["count"], Decimal(k["revenue"]), Decimal(k["cost"])) != (
                sku_direct["count"],
                round(sku_direct["revenue"], 2),
                round(sku_direct["cost"], 2),
            ):
                problems.append(f"sku-filtered summary {k} != direct {dict(sku_direct)}")
            else:
                checks.append("the sku-filtered summary equals a direct `count/SUM … WHERE EXISTS (line with the sku)`")
            m = await get_json(session, base, headers, "/api/v1/products/margins?from=2025-01-01&to=2025-12-31")
            msum = sum(Decimal(i["revenue"]) for i in m["items"])
            if abs(msum - year_direct) > Decimal("0.01") * len(m["items"]):
                problems.append(f"margins revenue over 2025 {msum} != direct SUM over lines {year_direct}")
            else:
                checks.append(
                    f"product margins over 2025 ({len(m['items'])} products) add up to a direct SUM "
                    "over the posted inventory lines"
                )
            # deep cursors: follow next_cursor 50 pages deep
            cursor = None
            deep = []
            for page in range(60):
                path = "/api/v1/sales" + (f"?cursor={cursor}" if cursor else "")
                body = await get_json(session, base, headers, path)
                cursor = body["next_cursor"]
                if page >= 49:
                    deep.append(cursor)
            checks.append(
                "the deep-page cursors were reached by following `next_cursor` 50–59 pages from the first page"
            )
            deep_q = None
            deep_it = iter(())

            def deep_url():
                nonlocal deep_it
                try:
                    return next(deep_it)
                except StopIteration:
                    deep_it = iter([f"/api/v1/sales?cursor={d}" for d in deep])
                    return next(deep_it)

            cust = loaded.customer_substring.replace(" ", "%20")

            def month_url():
                a, b = rng.choice(months)
                return f"/api/v1/sales?from={a}&to={b}"

            years = months[:-11]

            def margins_url():
                a, _ = rng.choice(years)
                b = date.fromordinal(date(a.year + 1, a.month, 1).toordinal() - 1)
                return f"/api/v1/products/margins?from={a}&to={b}"

            from multidict import MultiDict

            from services.query import params as qparams

            deep_q = qparams.sales_query(MultiDict({"cursor": deep[0]}))
            mid = months[len(months) // 2]
            scenarios = [
                Scenario(
                    "unfiltered",
                    "List, first page, unfiltered (50 rows, newest first)",
                    TARGET_LIST_MS,
                    lambda: "/api/v1/sales",
                    SalesQuery({}),
                ),
                Scenario(
                    "customer",
                    f"List, first page, customer `{loaded.customer_substring}`",
                    TARGET_LIST_MS,
                    lambda: f"/api/v1/sales?customer={cust}",
                    SalesQuery({"customer": f"%{loaded.customer_substring}%"}),
                ),
                Scenario(
                    "date",
                    "List, first page, 1-month date range",
                    TARGET_LIST_MS,
                    month_url,
                    SalesQuery({"from": mid[0], "to": mid[1]}),
                ),
                Scenario(
                    "sku",
                    f"List, first page, sku `{loaded.popular_sku}`",
                    TARGET_LIST_MS,
                    lambda: f"/api/v1/sales?sku={loaded.popular_sku}",
                    SalesQuery({"sku": loaded.popular_sku}),
                ),
                Scenario("deep", "List, deep page via cursor (pages 50–59)", TARGET_LIST_MS, deep_url, deep_q),
                Scenario(
                    "margin",
                    "List, first page, lowest margin first",
                    TARGET_LIST_MS,
                    lambda: "/api/v1/sales?sort=margin&order=asc",
                    SalesQuery({}, sort="margin", order="asc"),
                ),
                Scenario(
                    "detail",
                    "Sale detail (random sale)",
                    TARGET_LIST_MS,
                    lambda: f"/api/v1/sales/{rng.choice(sale_ids)}",
                    None,
                    "detail",
                ),
                Scenario(
                    "margins",
                    "Product margins over one year",
                    TARGET_MARGINS_MS,
                    margins_url,
                    (date(2025, 1, 1), date(2025, 12, 31)),
                    "margins",
                ),
            ]
            load_before = load_average()
            db = await asyncpg.connect(DATABASE_URL)
            for sc in scenarios:
                if args.client == "wrk":
                    r = await drive_wrk(base, loaded.big_key, sc, args.seconds, args.warmup, _proc.pid, db)
                else:
                    r = await drive(session, base, headers, sc, args.seconds, args.warmup, CLIENTS, _proc.pid, db)
                if r.errors:
                    problems.append(f"{sc.key}: {r.errors} answers were not 200")
                results.append(r)
                log(
                    f"{sc.title}: p50 {r.p50:.1f} ms, p99 {r.p99:.1f} ms, {r.rate:,.0f} req/s "
                    f"({r.count:,} requests) target < {sc.target_ms:.0f} ms "
                    f"{'PASS' if r.passed else 'FAIL'}"
                )
            load_after = load_average()
            for r in results:  # diagnostic: one client alone, i.e. without queueing
                one = await drive(session, base, headers, r.scenario, args.single_seconds, 0.3, 1)
                r.single_p50 = one.p50
                log(f"{r.scenario.key}: 1 client p50 {one.p50:.1f} ms")
            await db.close()
    for r in results:
        if not r.passed and r.scenario.kind in ("list", "margins"):
            explains[r.scenario.title] = await explain(loaded, r.scenario)
            print(explains[r.scenario.title])
    checks.append(f"all {sum(r.count for r in results):,} measured requests answered 200")
    if problems:
        for p in problems:
            log(f"CHECK FAILED: {p}")
        return 2
    section = render(
        loaded, results, explains, args, started, time.perf_counter() - t_start, load_before, load_after, checks
    )
    print(section)
    if not args.no_write:
        write_section(SECTION, "query", section)
        log(f"wrote the '{SECTION}' section of {RESULTS.relative_to(ROOT)}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.query_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 sales, 3 s per scenario")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the data a previous run loaded (migrated to the current schema) instead of "
        "loading anew; for iterating, never for recorded figures (implies --no-write)",
    )
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk",
        help="load generator: wrk (C, default; apt-get installs it if missing) or aiohttp in the bench process",
    )
    args = parser.parse_args()
    args.no_write = args.no_write or args.reuse
    args.seconds = 3.0 if args.quick else 10.0
    args.warmup = 1.0 if args.quick else 2.0
    args.single_seconds = 1.0 if args.quick else 2.0
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
