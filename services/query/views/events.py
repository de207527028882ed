"""Events (CQRS read view): whether an event accepted by ingest was applied or dead-lettered."""

from __future__ import annotations

import uuid

import asyncpg

from shared.db import Connection

EVENT_STATUS = """
SELECT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = $2 AND p.tenant_id = $1) AS applied,
       (SELECT d.reason FROM dead_letters d
        WHERE d.event_id = $2 AND d.tenant_id = $1 AND d.redriven_at IS NULL ORDER BY d.id DESC LIMIT 1) AS dead_reason,
       EXISTS (SELECT 1 FROM event_log e WHERE e.event_id = $2 AND e.tenant_id = $1)
       OR EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = $2 AND d.tenant_id = $1) AS known"""


async def event_status(conn: Connection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> asyncpg.Record:
    row = await conn.fetchrow(EVENT_STATUS, tenant_id, event_id)
    if row is None:  # a SELECT of expressions: always one row
        raise RuntimeError("EVENT_STATUS returned no row")
    return row
