"""Products (CQRS read views): margins over a date range (from the rollups) and stock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import asyncpg

from services.query import summaries
from shared.db import Connection


async def product_margins(
    conn: Connection, tenant_id: uuid.UUID, first: date | None, last: date | None
) -> list[asyncpg.Record]:
    sql, args = summaries.product_margins(tenant_id, first, last)
    return await conn.fetch(sql, *args)


PRODUCT = "SELECT p.id, p.sku, p.name, p.wac FROM products p WHERE p.tenant_id = $1 AND p.sku = $2"
# A product entered at ingest whose event the costing engine has not applied yet.
CATALOG_PRODUCT = "SELECT c.sku, c.name FROM catalog_products c WHERE c.tenant_id = $1 AND c.sku = $2"

PRODUCT_LOTS = """
SELECT lot.lot_number, lot.received_at, lot.quantity, lot.remaining, lot.unit_cost, lot.is_return
FROM lots lot WHERE lot.tenant_id = $1 AND lot.product_id = $2
ORDER BY lot.received_at, lot.lot_number"""

OPEN_SHORTAGE = """
SELECT coalesce(sum(l.shortage_qty), 0) FROM sale_lines l
WHERE l.product_id = $2 AND l.tenant_id = $1 AND l.in_demand AND l.shortage_qty > 0"""


@dataclass(frozen=True)
class Stock:
    sku: str
    name: str | None
    wac: Decimal
    lots: list[asyncpg.Record]
    open_shortage: Decimal


async def product_stock(conn: Connection, tenant_id: uuid.UUID, sku: str) -> Stock | None:
    """The product's stock, read from one snapshot (the caller's repeatable-read transaction)."""
    product = await conn.fetchrow(PRODUCT, tenant_id, sku)
    if product is None:
        catalog = await conn.fetchrow(CATALOG_PRODUCT, tenant_id, sku)
        if catalog is None:
            return None
        return Stock(catalog["sku"], catalog["name"], Decimal(0), [], Decimal(0))
    return Stock(
        product["sku"],
        product["name"],
        product["wac"],
        await conn.fetch(PRODUCT_LOTS, tenant_id, product["id"]),
        await conn.fetchval(OPEN_SHORTAGE, tenant_id, product["id"]),
    )
