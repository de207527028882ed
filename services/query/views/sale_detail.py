"""One sale (CQRS read view): the sale, its lines, their lot allocations, its versions
and cost revisions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from services.query.views.sales_list import SALE_COLUMNS
from shared.db import Connection

# A manual sale's notes live with its request body in ingest's manual_sales (one primary-key
# lookup); QuickBooks sales have none.
SALE = f"""
SELECT {SALE_COLUMNS},
       (SELECT m.body->>'notes' FROM manual_sales m
        WHERE s.source = 'manual' AND m.tenant_id = s.tenant_id AND m.reference = s.external_id) AS notes
FROM sales s WHERE s.tenant_id = $1 AND s.id = $2"""

SALE_LINES = """
SELECT l.id, l.line_no, l.sku, l.description, l.kind, l.quantity, l.revenue, l.cost, l.shortage_qty,
       l.shortage_cost, l.flags
FROM sale_lines l WHERE l.tenant_id = $1 AND l.sale_id = $2 ORDER BY l.line_no"""

# Lots consumed by the sale's lines, in supply order.
SALE_ALLOCATIONS = """
SELECT a.line_id, lot.lot_number, lot.received_at, a.quantity, lot.unit_cost
FROM sale_lines l
JOIN allocations a ON a.line_id = l.id
JOIN lots lot ON lot.id = a.lot_id
WHERE l.tenant_id = $1 AND l.sale_id = $2
ORDER BY l.line_no, lot.received_at, lot.lot_number"""

SALE_VERSIONS = """
SELECT v.version, v.event_id, v.event_type, v.applied, v.note, v.received_at
FROM sale_versions v WHERE v.tenant_id = $1 AND v.sale_id = $2 ORDER BY v.id"""

SALE_COST_REVISIONS = """
SELECT r.line_no, r.old_cost, r.new_cost, r.cause, r.event_id, r.created_at
FROM cost_revisions r WHERE r.tenant_id = $1 AND r.sale_id = $2 ORDER BY r.id"""


@dataclass(frozen=True)
class SaleDetail:
    sale: asyncpg.Record
    lines: list[asyncpg.Record]
    allocations: list[asyncpg.Record]
    versions: list[asyncpg.Record]
    revisions: list[asyncpg.Record]


async def sale_detail(conn: Connection, tenant_id: uuid.UUID, sale_id: int) -> SaleDetail | None:
    """One sale with its lines, allocations and history, read from one snapshot (the caller's
    repeatable-read transaction: routes.tenant_read)."""
    sale = await conn.fetchrow(SALE, tenant_id, sale_id)
    if sale is None:
        return None
    return SaleDetail(
        sale,
        await conn.fetch(SALE_LINES, tenant_id, sale_id),
        await conn.fetch(SALE_ALLOCATIONS, tenant_id, sale_id),
        await conn.fetch(SALE_VERSIONS, tenant_id, sale_id),
        await conn.fetch(SALE_COST_REVISIONS, tenant_id, sale_id),
    )
