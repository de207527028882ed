"""Shortages (CQRS read view): short lines of posted sales in demand order, keyset-paginated."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from shared.db import Connection

SHORTAGE_COLUMNS = "l.txn_date, l.source_created_at, l.source, l.external_id, l.sale_type, l.line_no"
SHORTAGE_KEY = f"({SHORTAGE_COLUMNS})"

_SHORTAGES = f"""
SELECT s.id AS sale_id, s.external_id, s.type, l.txn_date, s.customer, l.line_no, l.sku, l.shortage_qty,
       l.shortage_cost, l.source_created_at, l.source AS key_source, l.external_id AS key_external_id,
       l.sale_type AS key_sale_type
FROM sale_lines l
JOIN sales s ON s.id = l.sale_id
WHERE l.tenant_id = $1 AND l.shortage_qty > 0 AND l.in_demand AND s.tenant_id = $1 AND s.status = 'posted'
  {{after}}
ORDER BY {SHORTAGE_COLUMNS}
LIMIT $2"""
SHORTAGES_FIRST = _SHORTAGES.format(after="")
SHORTAGES_AFTER = _SHORTAGES.format(
    after=f"AND {SHORTAGE_KEY} > ($3::date, $4::timestamptz, $5::text, $6::text, $7::text, $8::int)"
)


async def shortages(
    conn: Connection, tenant_id: uuid.UUID, limit: int, after: tuple[date, datetime, str, str, str, int] | None
) -> list[asyncpg.Record]:
    """``limit + 1`` rows at most, oldest first in demand order, after the key ``after``."""
    if after is None:
        return await conn.fetch(SHORTAGES_FIRST, tenant_id, limit + 1)
    return await conn.fetch(SHORTAGES_AFTER, tenant_id, limit + 1, *after)
