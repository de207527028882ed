"""Shortages (CQRS read view): short lines of posted sales, with when each shortage was
first recorded (``shortage_records``, kept by triggers in the costing transaction).

* ``open`` (the default): the lines short now, in demand order (oldest sale first),
  keyset-paginated by the demand key; ``since`` from the open record.
* ``resolved`` / ``all``: the records (a line short twice has two), by (since, id),
  keyset-paginated by that key; an open one carries the line's current figures."""

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
       l.sale_type AS key_sale_type, r.opened_at, NULL::timestamptz AS resolved_at, r.id AS record_id
FROM sale_lines l
JOIN sales s ON s.id = l.sale_id
LEFT JOIN shortage_records r ON r.sale_id = l.sale_id AND r.line_no = l.line_no AND r.resolved_at IS NULL
     AND r.tenant_id = $1
WHERE l.tenant_id = $1 AND l.shortage_qty > 0 AND l.in_demand AND s.tenant_id = $1 AND s.status = 'posted'
  {{after}}
ORDER BY {SHORTAGE_COLUMNS}
LIMIT $2"""
SHORTAGES_FIRST = _SHORTAGES.format(after="")
SHORTAGES_AFTER = _SHORTAGES.format(
    after=f"AND {SHORTAGE_KEY} > ($3::date, $4::timestamptz, $5::text, $6::text, $7::text, $8::int)"
)

_RECORDS = """
SELECT r.id AS record_id, r.sale_id, s.external_id, s.type, s.txn_date, s.customer, r.line_no, r.sku,
       CASE WHEN r.resolved_at IS NULL AND l.id IS NOT NULL THEN l.shortage_qty ELSE r.quantity_short END
           AS shortage_qty,
       CASE WHEN r.resolved_at IS NULL AND l.id IS NOT NULL THEN l.shortage_cost ELSE r.shortage_cost END
           AS shortage_cost,
       r.opened_at, r.resolved_at
FROM shortage_records r
JOIN sales s ON s.tenant_id = $1 AND s.id = r.sale_id
LEFT JOIN sale_lines l ON l.tenant_id = $1 AND l.sale_id = r.sale_id AND l.line_no = r.line_no
WHERE r.tenant_id = $1 {status} {after}
ORDER BY r.opened_at, r.id
LIMIT $2"""
_STATUS = {"resolved": "AND r.resolved_at IS NOT NULL", "all": ""}


def records_sql(status: str, after: bool) -> str:
    return _RECORDS.format(
        status=_STATUS[status], after="AND (r.opened_at, r.id) > ($3::timestamptz, $4::bigint)" if after else ""
    )


async def shortages(
    conn: Connection, tenant_id: uuid.UUID, limit: int, after: tuple[date, datetime, str, str, str, int] | None
) -> list[asyncpg.Record]:
    """Open shortages: ``limit + 1`` rows at most, oldest first in demand order, after ``after``."""
    if after is None:
        return await conn.fetch(SHORTAGES_FIRST, tenant_id, limit + 1)
    return await conn.fetch(SHORTAGES_AFTER, tenant_id, limit + 1, *after)


async def shortage_records(
    conn: Connection, tenant_id: uuid.UUID, status: str, limit: int, after: tuple[datetime, int] | None
) -> list[asyncpg.Record]:
    """Resolved (or all) shortage records: ``limit + 1`` at most by (since, id), after ``after``."""
    if after is None:
        return await conn.fetch(records_sql(status, False), tenant_id, limit + 1)
    return await conn.fetch(records_sql(status, True), tenant_id, limit + 1, *after)
