"""Folding the rollup deltas (shared/migrations/0003_query.sql) into their base tables.

Triggers append signed deltas to ``sales_totals_delta`` and ``product_totals_delta``
in the costing engine's transactions. Readers always add base and deltas, so folding
is only about keeping the delta tables short: each fold moves a batch of deltas into
the base tables in one transaction (a reader sees every delta exactly once, before or
after). One folder at a time across processes (advisory lock); more would only wait.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from services.query.metrics import ROLLUP_DELTAS_FOLDED
from shared.db import UnavailableError, translate
from shared.logging import get_logger

log = get_logger("query.rollups")

_FOLD_LOCK = 0x51E5_7074  # advisory lock id: one folder at a time

FOLD_SALES_TOTALS = """
WITH moved AS (
    DELETE FROM sales_totals_delta
    WHERE id IN (SELECT id FROM sales_totals_delta ORDER BY id LIMIT $1)
    RETURNING tenant_id, day, status, type, source, has_shortage, sales, revenue, cost
), folded AS (
    INSERT INTO sales_totals AS t (tenant_id, day, status, type, source, has_shortage, sales, revenue, cost)
    SELECT tenant_id, day, status, type, source, has_shortage, sum(sales), sum(revenue), sum(cost)
    FROM moved GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (tenant_id, day, status, type, source, has_shortage) DO UPDATE
    SET sales = t.sales + EXCLUDED.sales, revenue = t.revenue + EXCLUDED.revenue, cost = t.cost + EXCLUDED.cost
    RETURNING 1
)
SELECT count(*) FROM moved"""

FOLD_PRODUCT_TOTALS = """
WITH moved AS (
    DELETE FROM product_totals_delta
    WHERE id IN (SELECT id FROM product_totals_delta ORDER BY id LIMIT $1)
    RETURNING tenant_id, day, product_id, lines, quantity_sold, quantity_returned, revenue, cost, shortage_qty
), folded AS (
    INSERT INTO product_totals AS t (tenant_id, day, product_id, lines, quantity_sold, quantity_returned, revenue,
                                     cost, shortage_qty)
    SELECT tenant_id, day, product_id, sum(lines), sum(quantity_sold), sum(quantity_returned), sum(revenue),
           sum(cost), sum(shortage_qty)
    FROM moved GROUP BY 1, 2, 3
    ON CONFLICT (tenant_id, day, product_id) DO UPDATE
    SET lines = t.lines + EXCLUDED.lines, quantity_sold = t.quantity_sold + EXCLUDED.quantity_sold,
        quantity_returned = t.quantity_returned + EXCLUDED.quantity_returned, revenue = t.revenue + EXCLUDED.revenue,
        cost = t.cost + EXCLUDED.cost, shortage_qty = t.shortage_qty + EXCLUDED.shortage_qty
    RETURNING 1
)
SELECT count(*) FROM moved"""


async def fold_once(pool: asyncpg.Pool, batch: int = 20_000) -> int:
    """Fold up to ``batch`` deltas of each rollup; the number moved (0 if another
    process is folding)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _FOLD_LOCK):
            return 0
        return await conn.fetchval(FOLD_SALES_TOTALS, batch) + await conn.fetchval(FOLD_PRODUCT_TOTALS, batch)


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
        except Exception as exc:  # noqa: BLE001 - folding is housekeeping: log, retry next round
            if isinstance(translate(exc), UnavailableError):
                log.warning("query.rollups.database_unavailable", error=str(exc))
            else:
                log.exception("query.rollups.fold_failed")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def folding(pool: asyncpg.Pool, interval: float = 1.0):
    task = asyncio.create_task(keep_folding(pool, interval), name="rollup-folder")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
