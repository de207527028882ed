"""CSV exports (``format=csv``): every matching row, streamed. Rows come from a
server-side cursor inside the tenant-scoped read transaction and are written in chunks,
so memory stays bounded whatever the number of rows. Amounts are plain decimal strings
(as in the JSON), dates ISO 8601, empty cells for nulls."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
from aiohttp import web

from shared.db import tenant_read

CONTENT_TYPE = "text/csv; charset=utf-8"
CHUNK_BYTES = 64 * 1024
#: Rows the cursor fetches per round trip.
PREFETCH = 500


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):  # a nested reference (e.g. a sale): its id
        return _cell(value.get("id"))
    return value


async def _write_rows(
    response: web.StreamResponse, header: Sequence[str], rows: AsyncIterable[dict[str, Any]] | Iterable[dict[str, Any]]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)

    async def flush() -> None:
        await response.write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()

    if isinstance(rows, AsyncIterable):
        async for row in rows:
            writer.writerow([_cell(row.get(name)) for name in header])
            if buffer.tell() >= CHUNK_BYTES:
                await flush()
    else:
        for row in rows:
            writer.writerow([_cell(row.get(name)) for name in header])
            if buffer.tell() >= CHUNK_BYTES:
                await flush()
    await flush()


async def _start(request: web.Request, filename: str) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": CONTENT_TYPE,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
    )
    correlation = request.headers.get("X-Correlation-ID")
    if correlation is not None:
        response.headers["X-Correlation-ID"] = correlation
    await response.prepare(request)
    return response


async def stream_query(
    request: web.Request,
    pool: asyncpg.Pool,
    tenant_id: uuid.UUID,
    filename: str,
    header: Sequence[str],
    sql: str,
    args: Sequence[Any],
    present: Callable[[asyncpg.Record], dict[str, Any]],
) -> web.StreamResponse:
    """Every row of ``sql`` as CSV (``present`` makes each a dict keyed by ``header``)."""
    async with tenant_read(pool, tenant_id) as conn:
        cursor = conn.cursor(sql, *args, prefetch=PREFETCH)
        response = await _start(request, filename)

        async def rows() -> AsyncIterable[dict[str, Any]]:
            async for record in cursor:
                yield present(record)

        await _write_rows(response, header, rows())
    await response.write_eof()
    return response


async def stream_rows(
    request: web.Request, filename: str, header: Sequence[str], rows: Iterable[dict[str, Any]]
) -> web.StreamResponse:
    """Rows already read (a short list, e.g. one per product) as CSV."""
    response = await _start(request, filename)
    await _write_rows(response, header, rows)
    await response.write_eof()
    return response
