"""HTTP edge of the query API: check the parameters, run a read view, present the
rows. No SQL here (services/query/views/) and no rounding (presenters.py).
Every route is under /api/v1/ and so scoped by the API key's tenant, except the
OpenAPI document (app.PUBLIC_PATHS)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from services.query import csv_export, openapi, params, presenters, views
from services.query.app_keys import READ_GENERIC_POOL, READ_POOL
from shared.db import tenant_read
from shared.money import WIDE
from shared.web import POOL, TENANT, ApiError, json_response

routes = web.RouteTableDef()
T = TypeVar("T")


async def _read(pool: asyncpg.Pool, view: Callable[..., Awaitable[T]], tenant_id: uuid.UUID, *args: Any) -> T:
    """Run a read view in a read-only transaction scoped to the tenant (row-level security)."""
    async with tenant_read(pool, tenant_id) as conn:
        return await view(conn, tenant_id, *args)


def _pool(request: web.Request, statement: views.Statement) -> asyncpg.Pool:
    return request.app[READ_GENERIC_POOL if statement.generic else READ_POOL]


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what}")


@routes.get("/api/v1/openapi.json")
async def openapi_document(_request: web.Request) -> web.Response:
    return json_response(openapi.DOCUMENT)


#: Columns of the CSV exports, in order (the JSON items' fields).
SALES_CSV = (
    "id", "source", "type", "external_id", "doc_number", "date", "customer", "revenue", "cost", "margin",
    "margin_pct", "status", "shortage", "updated_at",
)  # fmt: skip
MARGINS_CSV = (
    "sku", "name", "quantity_sold", "quantity_returned", "revenue", "cost", "margin", "margin_pct",
    "shortage_quantity",
)  # fmt: skip
MOVES_CSV = ("date", "kind", "quantity", "lot_number", "sale", "sale_type", "sale_external_id", "line_no", "on_hand")
#: No page limit for an export: every matching row.
EXPORT_LIMIT = 2**62


@routes.get("/api/v1/sales")
async def list_sales(request: web.Request) -> web.StreamResponse:
    csv = params.output_format(request.query) == "csv"
    q = params.sales_query(request.query)
    if csv:
        # The list's own statement, every row (its summary column is ignored).
        statement = views.sales_list_statement(request[TENANT], dataclasses.replace(q, limit=EXPORT_LIMIT))
        return await csv_export.stream_query(
            request,
            _pool(request, statement),
            request[TENANT],
            "sales.csv",
            SALES_CSV,
            f"SELECT * FROM ({statement.sql}) x WHERE x.id IS NOT NULL",
            statement.args,
            presenters.sale_item,
        )
    statement = views.sales_list_statement(request[TENANT], q)
    async with tenant_read(_pool(request, statement), request[TENANT]) as conn:
        rows = await conn.fetch(statement.sql, *statement.args)
    summary = presenters.summary(rows[0]["summary_count"], rows[0]["summary_revenue"], rows[0]["summary_cost"])
    items = rows[: q.limit] if rows[0]["id"] is not None else []
    next_cursor = None
    if len(rows) > q.limit:
        last = items[-1]
        next_cursor = params.sales_cursor(q.sort, q.order, last["sort_key"], last["id"])
    return json_response(
        {"items": [presenters.sale_item(r) for r in items], "next_cursor": next_cursor, "summary": summary}
    )


@routes.get("/api/v1/sales/{id}")
async def get_sale(request: web.Request) -> web.Response:
    sale_id = params.path_id(request.match_info["id"])
    # five primary-key and sale_id lookups: the same plans for any sale
    detail = await _read(request.app[READ_GENERIC_POOL], views.sale_detail, request[TENANT], sale_id)
    if detail is None:
        raise _not_found(f"sale {sale_id}")
    return json_response(presenters.sale_detail(detail))


def _margin_sort_key(sort: str) -> Callable[[asyncpg.Record], Decimal | None]:
    def key(r: asyncpg.Record) -> Decimal | None:
        if sort == "margin":
            return WIDE.subtract(r["revenue"], r["cost"])
        if sort == "margin_pct":
            return (
                WIDE.divide(WIDE.multiply(WIDE.subtract(r["revenue"], r["cost"]), 100), r["revenue"])
                if r["revenue"] != 0
                else None
            )
        value: Decimal | None = r[sort]  # a column of the margins view
        return value

    return key


@routes.get("/api/v1/products/margins")
async def product_margins(request: web.Request) -> web.StreamResponse:
    csv = params.output_format(request.query) == "csv"
    first, last, sort, order = params.margins_args(request.query)
    # sums of rollup ranges by primary key: the same plans for any range
    rows = await _read(request.app[READ_GENERIC_POOL], views.product_margins, request[TENANT], first, last)
    key = _margin_sort_key(sort)
    keyed = [(key(r), r) for r in sorted(rows, key=lambda r: r["sku"])]  # ties: by sku
    valued = sorted(((k, r) for k, r in keyed if k is not None), key=lambda kr: kr[0], reverse=order == "desc")
    unvalued = [r for k, r in keyed if k is None]  # no margin % without revenue: always last
    items = [presenters.product_margin(r) for r in [*(r for _, r in valued), *unvalued]]
    if csv:  # one row per product, summed from the rollups: already in hand
        return await csv_export.stream_rows(request, "product-margins.csv", MARGINS_CSV, items)
    return json_response({"items": items})


@routes.get("/api/v1/products/{sku}/stock")
async def product_stock(request: web.Request) -> web.Response:
    sku = params.checked_text("sku", request.match_info["sku"])
    stock = await _read(request.app[READ_POOL], views.product_stock, request[TENANT], sku)
    if stock is None:
        raise _not_found(f"product {sku!r}")
    return json_response(presenters.stock(stock))


@routes.get("/api/v1/products/{sku}/transactions")
async def product_transactions(request: web.Request) -> web.StreamResponse:
    """The product's stock ledger, oldest first, with the quantity on hand after each move."""
    sku = params.checked_text("sku", request.match_info["sku"])
    csv = params.output_format(request.query) == "csv"
    limit, raw_cursor = params.page_args(request.query)
    after = params.decode_keyset_cursor(raw_cursor, "moves") if raw_cursor is not None and not csv else None
    pool, tenant = request.app[READ_POOL], request[TENANT]
    async with tenant_read(pool, tenant) as conn:
        pid = await views.product_id(conn, tenant, sku)
        rows = await views.stock_moves(conn, tenant, pid, limit, after) if pid and not csv else []
    if pid is False:
        raise _not_found(f"product {sku!r}")
    if csv:

        def row(r: asyncpg.Record) -> dict[str, Any]:
            return {**presenters.stock_move(r), "sale": r["sale_id"], "sale_type": r["sale_type"],
                    "sale_external_id": r["sale_external_id"]}  # fmt: skip

        return await csv_export.stream_query(
            request, pool, tenant, f"transactions-{_safe(sku)}.csv", MOVES_CSV, views.MOVES_ALL,
            [tenant, pid or 0], row,
        )  # fmt: skip
    items = rows[:limit]
    next_cursor = params.keyset_cursor("moves", items[-1]["moved_at"], items[-1]["id"]) if len(rows) > limit else None
    return json_response({"items": [presenters.stock_move(r) for r in items], "next_cursor": next_cursor})


def _safe(name: str) -> str:
    """A sku as part of a file name (letters, digits, '-', '_', '.')."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)[:80]


@routes.get("/api/v1/shortages")
async def list_shortages(request: web.Request) -> web.Response:
    status = params.shortage_status(request.query)
    limit, raw_cursor = params.page_args(request.query)
    if status != "open":
        after_record = params.decode_keyset_cursor(raw_cursor, "shortage_records") if raw_cursor is not None else None
        records = await _read(
            request.app[READ_POOL], views.shortage_records, request[TENANT], status, limit, after_record
        )
        page = records[:limit]
        next_record = (
            params.keyset_cursor("shortage_records", page[-1]["opened_at"], page[-1]["record_id"])
            if len(records) > limit
            else None
        )
        return json_response({"items": [presenters.shortage(r) for r in page], "next_cursor": next_record})
    after = params.decode_shortages_cursor(raw_cursor) if raw_cursor is not None else None
    rows = await _read(request.app[READ_POOL], views.shortages, request[TENANT], limit, after)
    items = rows[:limit]
    next_cursor = params.shortages_cursor(items[-1]) if len(rows) > limit else None
    return json_response({"items": [presenters.shortage(r) for r in items], "next_cursor": next_cursor})


@routes.get("/api/v1/events/{event_id}")
async def event_status(request: web.Request) -> web.Response:
    event_id: uuid.UUID = params.path_uuid(request.match_info["event_id"], "event_id")
    # The primary: a client asks right after its write, which a replica may not show yet.
    row = await _read(request.app[POOL], views.event_status, request[TENANT], event_id)
    if row["applied"]:
        status, error = "applied", None
    elif row["dead_reason"] is not None:
        status, error = "dead_lettered", row["dead_reason"]
    elif row["known"]:
        status, error = "pending", None
    else:
        raise _not_found(f"event {event_id}")
    return json_response({"event_id": str(event_id), "status": status, "error": error})
