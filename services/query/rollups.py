"""Folding the rollup deltas (shared/migrations/0003_query.sql) into their base tables.

Triggers append signed deltas to ``sales_totals_delta`` and ``product_totals_delta``
in the costing engine's transactions. Readers always add base and deltas, so folding
is only about keeping the delta tables short: each fold moves a batch of deltas into
the base tables in one transaction (a reader sees every delta exactly once, before or
after). One folder at a time across processes (advisory lock); more would only wait.

The same transaction folds the sort keys of the sales the costing engine re-costed
(0014_cost_keys_folded.sql): their current revenue and cost into sale_cost_keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncpg

from services.query.metrics import ROLLUP_DELTAS_FOLDED
from shared.aio import running
from shared.db import TransientError, UnavailableError, set_tenant, translate
from shared.logging import get_logger

log = get_logger("query.rollups")

FOLD_LOCK = 0x51E5_7074  # advisory lock id: one folder at a time

MONTH = "date_trunc('month', day::timestamp)::date"
SALE_DIMENSIONS = ("status", "type", "source", "has_shortage")
SALE_VALUES = ("sales", "revenue", "cost")
PRODUCT_VALUES = ("lines", "quantity_sold", "quantity_returned", "revenue", "cost", "shortage_qty")


@dataclass(frozen=True)
class Grain:
    """A base table of a rollup: its key columns, each computed from the delta's
    columns (name, expression), and whether it sums the values (else it only lists
    the keys it has seen)."""

    table: str
    keys: tuple[tuple[str, str], ...]
    summed: bool = True


@dataclass(frozen=True)
class Rollup:
    """A delta table (its key columns and summed values) and the grains it is folded into."""

    delta: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    grains: tuple[Grain, ...]


def _keys(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


ROLLUPS = (
    Rollup(
        "sales_totals_delta",
        ("tenant_id", "day", *SALE_DIMENSIONS),
        SALE_VALUES,
        (
            Grain("sales_totals", _keys("tenant_id", "day", *SALE_DIMENSIONS)),
            Grain("sales_totals_month", (("tenant_id", "tenant_id"), ("month", MONTH), *_keys(*SALE_DIMENSIONS))),
            Grain("sales_totals_all", _keys("tenant_id", *SALE_DIMENSIONS)),
        ),
    ),
    Rollup(
        "product_totals_delta",
        ("tenant_id", "day", "product_id"),
        PRODUCT_VALUES,
        (
            Grain("product_totals", _keys("tenant_id", "day", "product_id")),
            Grain("product_totals_month", (("tenant_id", "tenant_id"), ("month", MONTH), ("product_id", "product_id"))),
        ),
    ),
    Rollup(
        "customer_totals_delta",
        ("tenant_id", "customer", *SALE_DIMENSIONS),
        SALE_VALUES,
        (
            Grain("customer_totals", _keys("tenant_id", "customer", *SALE_DIMENSIONS)),
            Grain("customer_names", _keys("tenant_id", "customer"), summed=False),
        ),
    ),
    Rollup(
        "sku_totals_delta",
        ("tenant_id", "sku", *SALE_DIMENSIONS),
        SALE_VALUES,
        (Grain("sku_totals", _keys("tenant_id", "sku", *SALE_DIMENSIONS)),),
    ),
)


def fold_sql(rollup: Rollup) -> str:
    """One statement: delete the oldest ``$1`` deltas and add them to every grain."""
    moved = ", ".join([*rollup.keys, *rollup.values])
    parts = [
        f"""WITH moved AS (
    DELETE FROM {rollup.delta}
    WHERE id IN (SELECT id FROM {rollup.delta} ORDER BY id LIMIT $1)
    RETURNING {moved}
)"""
    ]
    for n, grain in enumerate(rollup.grains):
        values = rollup.values if grain.summed else ()
        names = [c for c, _ in grain.keys]
        updates = ", ".join(f"{v} = t.{v} + EXCLUDED.{v}" for v in values)
        parts.append(f"""fold{n} AS (
    INSERT INTO {grain.table} AS t ({", ".join([*names, *values])})
    SELECT {", ".join([*(e for _, e in grain.keys), *(f"sum({v})" for v in values)])}
    FROM moved GROUP BY {", ".join(str(i + 1) for i in range(len(grain.keys)))}
    ON CONFLICT ({", ".join(names)}) DO {f"UPDATE SET {updates}" if values else "NOTHING"}
)""")
    return ",\n".join(parts) + "\nSELECT count(*) FROM moved"


# The oldest $1 stale marks out (each names the sales of one statement, 0031), their
# sales' revenue and cost into their keys: one statement, so the keys are read from the
# snapshot in which the marks were found (a sale re-costed since then has a newer mark,
# which stays). Counts the sales folded.
FOLD_COST_KEYS = """
WITH moved AS (
    DELETE FROM sale_cost_keys_stale
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM sale_cost_keys_stale LIMIT $1))
    RETURNING sale_ids
), sales_moved AS MATERIALIZED (
    SELECT DISTINCT u.id FROM moved m, unnest(m.sale_ids) u(id)
), folded AS (
    UPDATE sale_cost_keys k SET revenue = s.revenue, cost = s.cost
    FROM sales s
    WHERE s.id = k.sale_id AND k.sale_id IN (SELECT id FROM sales_moved)
      AND (k.revenue, k.cost) IS DISTINCT FROM (s.revenue, s.cost)
)
SELECT count(*) FROM sales_moved"""

FOLDS = (*(fold_sql(r) for r in ROLLUPS), FOLD_COST_KEYS)


# The tenants with deltas to fold: the folder's one cross-tenant read, through a SECURITY
# DEFINER function (0017_row_level_security.sql); it folds each under that tenant's scope.
PENDING_TENANTS = "SELECT tenant_id FROM rollup_pending_tenants() AS tenant_id"


async def fold_once(pool: asyncpg.Pool, batch: int = 20_000) -> int:
    """Fold up to ``batch`` deltas of each rollup of each tenant that has some; the number
    moved (0 if another process is folding)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", FOLD_LOCK):
            return 0
        moved = 0
        for tenant_id in [r["tenant_id"] for r in await conn.fetch(PENDING_TENANTS)]:
            await set_tenant(conn, tenant_id)
            moved += sum([await conn.fetchval(sql, batch) for sql in FOLDS])
        return moved


async def fold_all(pool: asyncpg.Pool, batch: int = 20_000) -> int:
    """Fold until the delta tables are (nearly) empty."""
    total = 0
    while moved := await fold_once(pool, batch):
        total += moved
        if moved < batch:
            break
    return total


async def keep_folding(pool: asyncpg.Pool, interval: float = 1.0) -> None:
    """The query service's background task: fold every ``interval`` seconds."""
    while True:
        try:
            moved = await fold_all(pool)
            if moved:
                ROLLUP_DELTAS_FOLDED.inc(moved)
                log.debug("query.rollups.folded", deltas=moved)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = translate(exc)
            if isinstance(err, UnavailableError):
                log.warning("query.rollups.database_unavailable", error=str(exc))
            elif type(err) is TransientError:  # a deadlock or serialization failure: next round
                log.warning("query.rollups.fold_contended", error=str(exc))
            else:
                log.exception("query.rollups.fold_failed")
        await asyncio.sleep(interval)


def folding(pool: asyncpg.Pool, interval: float = 1.0) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """Keep folding in the background for the life of the block."""
    return running(keep_folding(pool, interval), name="rollup-folder")
