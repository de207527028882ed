"""A product's stock transactions (CQRS read view over the costing engine's ledger,
``stock_moves``): oldest first by (moved_at, id), each with the quantity on hand after it
(the running sum of the ledger), keyset-paginated; or every row, for a CSV export."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from shared.db import Connection

PRODUCT_ID = "SELECT p.id FROM products p WHERE p.tenant_id = $1 AND p.sku = $2"
CATALOG_SKU = "SELECT true FROM catalog_products c WHERE c.tenant_id = $1 AND c.sku = $2"

_COLUMNS = """m.id, m.moved_at, m.kind, m.quantity, m.lot_number, m.sale_id, m.line_no,
       s.type AS sale_type, s.external_id AS sale_external_id"""

#: The page: $1 tenant, $2 product, $3 limit, ($4, $5) the cursor's (moved_at, id).
_PAGE = f"""
WITH page AS MATERIALIZED (
    SELECT m.* FROM stock_moves m
    WHERE m.tenant_id = $1 AND m.product_id = $2 {{after}}
    ORDER BY m.moved_at, m.id LIMIT $3
), before AS (
    SELECT coalesce(sum(b.quantity), 0) AS on_hand FROM stock_moves b
    WHERE b.tenant_id = $1 AND b.product_id = $2 {{before}}
)
SELECT {_COLUMNS}, before.on_hand + sum(m.quantity) OVER (ORDER BY m.moved_at, m.id) AS on_hand
FROM page m CROSS JOIN before
LEFT JOIN sales s ON s.tenant_id = $1 AND s.id = m.sale_id
ORDER BY m.moved_at, m.id"""
MOVES_FIRST = _PAGE.format(after="", before="AND false")
MOVES_AFTER = _PAGE.format(
    after="AND (m.moved_at, m.id) > ($4::timestamptz, $5::bigint)",
    before="AND (b.moved_at, b.id) <= ($4::timestamptz, $5::bigint)",
)
#: Every move of the product (CSV), in the same order, read through a cursor.
MOVES_ALL = f"""
SELECT {_COLUMNS}, sum(m.quantity) OVER (ORDER BY m.moved_at, m.id) AS on_hand
FROM stock_moves m LEFT JOIN sales s ON s.tenant_id = $1 AND s.id = m.sale_id
WHERE m.tenant_id = $1 AND m.product_id = $2
ORDER BY m.moved_at, m.id"""


async def product_id(conn: Connection, tenant_id: uuid.UUID, sku: str) -> int | bool | None:
    """The product's id; False when the sku is unknown; None when it is in the catalog but
    the costing engine has not seen it yet (no moves)."""
    pid: int | None = await conn.fetchval(PRODUCT_ID, tenant_id, sku)
    if pid is not None:
        return pid
    return None if await conn.fetchval(CATALOG_SKU, tenant_id, sku) else False


async def stock_moves(
    conn: Connection, tenant_id: uuid.UUID, pid: int, limit: int, after: tuple[datetime, int] | None
) -> list[asyncpg.Record]:
    """``limit + 1`` moves at most, oldest first, after the key ``after``."""
    if after is None:
        return await conn.fetch(MOVES_FIRST, tenant_id, pid, limit + 1)
    return await conn.fetch(MOVES_AFTER, tenant_id, pid, limit + 1, *after)
