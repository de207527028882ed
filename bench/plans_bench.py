"""Plans of the costing statements on tables that were never analyzed and hold many dead rows.

    .venv/bin/python -m bench.plans_bench            # 3,000 lines, 3 backdates
    .venv/bin/python -m bench.plans_bench --quick    # 1,000 lines, 2 backdates

A fresh database (``BENCH_PLANS_DATABASE_URL``, default ``…/partsemble_bench_plans``), never
analyzed (autovacuum switched off for its tables), one product costed through the engine
(in-order sales, groups of 100), then backdated sales that re-cost the whole tail several
times (every line, allocation and lot row rewritten: dead versions everywhere). Then one more
backdated sale is applied with a query logger, and every statement it ran is explained
(``EXPLAIN (ANALYZE, BUFFERS)`` with its arguments, in a rolled-back transaction set up as
the engine's: tenant scope, ``force_custom_plan``, ``random_page_cost``): the report lists,
per statement, its time and whether its plan scans a whole costing table (a Seq Scan on
``sale_lines``, ``allocations``, ``lots``, ``sales``). Exit 2 when one does. Prints only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal

import asyncpg

from bench.common import recreate_bench_database, service_url
from bench.costing_bench import lot_event, new_tenant, product_event, sale_event, sale_key
from services.costing.repository import PLAN_EACH_STATEMENT, STATEMENT_MODULES
from services.costing.service import CostingService, groups
from shared.db import create_pool, tenant_setting_sql

DATABASE_URL = os.environ.get("BENCH_PLANS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/partsemble_bench_plans")
TABLES = ("sale_lines", "allocations", "lots", "sales", "products", "processed_events", "sale_versions")
WATCHED = ("sale_lines", "allocations", "lots", "sales")


def statement_names() -> dict[str, str]:
    return {v.strip(): k for m in STATEMENT_MODULES for k, v in vars(m).items() if isinstance(v, str) and k.isupper()}


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--show-ms", type=float, default=100.0, help="print the plans of statements slower than this")
    args = parser.parse_args()
    lines, backdates = (1_000, 2) if args.quick else (3_000, 3)
    await recreate_bench_database(DATABASE_URL)
    owner = await create_pool(DATABASE_URL, 1, 2)
    for table in TABLES:
        await owner.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    captured: list[tuple[str, tuple[object, ...]]] = []

    async def init(conn: asyncpg.Connection) -> None:
        from shared.db import _init_connection

        await _init_connection(conn)
        conn.add_query_logger(lambda r: captured.append((r.query, r.args)))

    service_pool = await asyncpg.create_pool(service_url(DATABASE_URL), min_size=1, max_size=2, init=init)
    svc = CostingService(service_pool)
    tenant = await new_tenant(owner, "plans")
    await svc.apply(product_event(tenant, "P"))
    await svc.apply(lot_event(tenant, "P", 0, Decimal(lines // 2)))
    await svc.apply(lot_event(tenant, "P", 1, Decimal(lines)))
    sales = [sale_event(tenant, f"S{k:06d}", k + 10, [("P", Decimal(1))]) for k in range(lines)]
    for group in groups(sales, 100):
        await svc.apply_group(group)
    for b in range(backdates + 1):
        if b == backdates:
            captured.clear()
        # Before every line: each backdate moves the whole tail by 1 unit.
        early = sale_event(tenant, f"B{b}", 0, [("P", Decimal(1))], key=sale_key(0))
        await svc.apply(early)
    statements = list(captured)
    stats = await owner.fetch(
        "SELECT c.relname, reltuples, n_live_tup, n_dead_tup, last_analyze, last_autoanalyze FROM pg_class c "
        "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = ANY($1::text[]) ORDER BY c.relname",
        list(TABLES),
    )
    print("| table | reltuples (-1: never analyzed) | live rows | dead rows |\n|---|---:|---:|---:|")
    for r in stats:
        print(f"| {r['relname']} | {r['reltuples']:.0f} | {r['n_live_tup']:,} | {r['n_dead_tup']:,} |")
    names = statement_names()
    slow: list[tuple[str, str]] = []
    bad = 0
    print("\n| statement | time | scans a whole table |\n|---|---:|---|")
    async with service_pool.acquire() as conn:
        for query, qargs in statements:
            name = names.get(query.strip())
            if name is None:
                continue
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(f"{PLAN_EACH_STATEMENT}; {tenant_setting_sql(tenant)}")
                plan = "\n".join(
                    r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {query}", *qargs)
                )
            finally:
                await tr.rollback()
            seq = sorted({t for t in WATCHED if f"Seq Scan on {t}" in plan})
            bad += bool(seq)
            ms = plan.rsplit("Execution Time: ", 1)[-1].split(" ms")[0]
            print(f"| `{name}` | {float(ms):.1f} ms | {', '.join(seq) or 'no'} |")
            if float(ms) > args.show_ms:
                slow.append((name, plan))
    await service_pool.close()
    await owner.close()
    print(f"\n{bad} statement(s) scanning a whole costing table")
    for name, plan in slow:
        print(f"\n{name}:\n```\n{plan}\n```")
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
