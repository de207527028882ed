"""The OpenAPI 3.0 description of the query API, served at /api/v1/openapi.json.

It states what the service really does (tests/integration/test_query_schemathesis.py
holds it to that): parameters with their constraints, every status each operation
answers, money as strings with exactly 2 decimals, quantities as plain decimal
strings, nullable fields marked nullable, objects closed (no undocumented fields).
"""

from __future__ import annotations

from typing import Any

from services.query.cursor import CURSOR_PATTERN, MAX_CURSOR_LENGTH
from services.query.openapi_schemas import (
    ALLOCATION,
    COST_REVISION,
    ERROR,
    EVENT_STATUS,
    INVALID_PARAMETER,
    LINE,
    LOT,
    MONEY_PATTERN,
    PRODUCT_MARGIN,
    QUANTITY_PATTERN,
    SALE_DETAIL,
    SALE_ITEM_PROPERTIES,
    SALES_PAGE,
    SHORTAGE,
    STOCK,
    STOCK_MOVE,
    TENANT,
    UUID,
    VERSION,
    _obj,
)
from services.query.params import (
    DEFAULT_LIMIT,
    MARGIN_SORTS,
    MAX_BIGINT,
    MAX_LIMIT,
    MAX_PCT,
    MAX_TEXT,
    ORDERS,
    SALE_SORTS,
    SALE_STATUSES,
    SALE_TYPES,
    SOURCES,
)
from shared.openapi import (
    document,
    path_parameter,
)
from shared.openapi import (
    json_body as _json,
)
from shared.openapi import (
    ref as _ref,
)
from shared.openapi import (
    string as _string,
)


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _text(max_length: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


DATE_FROM = _query("from", {"type": "string", "format": "date"}, "First transaction date (inclusive), YYYY-MM-DD.")
DATE_TO = _query(
    "to", {"type": "string", "format": "date"}, "Last transaction date (inclusive), YYYY-MM-DD; not before `from`."
)
ORDER = _query("order", {"type": "string", "enum": list(ORDERS), "default": "desc"}, "Sort direction.")
LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "Page size.")
CURSOR_SCHEMA = {**_text(MAX_CURSOR_LENGTH), "pattern": CURSOR_PATTERN}
CURSOR = _query("cursor", CURSOR_SCHEMA, "The `next_cursor` of the previous page (opaque).")
PCT_BOUNDS = {"type": "number", "minimum": -int(MAX_PCT), "maximum": int(MAX_PCT)}


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return path_parameter(name, description, schema)


# --- responses ----------------------------------------------------------------------------

INVALID_CURSOR = _obj(
    {
        "error": {"type": "string", "enum": ["invalid_cursor"]},
        "detail": {"type": "string", "enum": ["invalid cursor"]},
    }
)
BAD_PARAMETER = _json(
    {"oneOf": [_ref("InvalidParameter"), _ref("InvalidCursor")]},
    "A parameter is malformed or out of range, or the cursor is not one this API made "
    "for this sort and order (invalid_cursor).",
)
UNAUTHORIZED = _json(_ref("Error"), "No valid API key (Authorization: Bearer <key>).")
NOT_FOUND = _json(_ref("Error"), "No such object for this tenant.")


FORBIDDEN = _json(
    _ref("Error"),
    "`sales_tracking_unavailable`: the tenant is not on the Advanced plan with receiving enabled.",
)
FORMAT = _query(
    "format",
    {"type": "string", "enum": ["json", "csv"], "default": "json"},
    "`csv`: every matching row (no paging; `limit` and `cursor` ignored) as a streamed CSV attachment "
    "with a header row, same filters and order.",
)


def _with_csv(response: dict[str, Any]) -> dict[str, Any]:
    return {
        **response,
        "content": {**response["content"], "text/csv": {"schema": {"type": "string"}}},
    }


def _operation(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    parameters: list[dict[str, Any]],
    *,
    not_found: bool = False,
    description: str | None = None,
    gated: bool = True,
) -> dict[str, Any]:
    responses = {"200": ok, "400": BAD_PARAMETER, "401": UNAUTHORIZED}
    if gated:
        responses["403"] = FORBIDDEN
    if not_found:
        responses["404"] = NOT_FOUND
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": parameters,
        "responses": responses,
    }
    if description:
        operation["description"] = description
    return {"get": operation}


DOCUMENT: dict[str, Any] = document(
    "Partsemble sales tracking: query API",
    "Read API over the FIFO-costed sales of one tenant (the API key's). Money is a decimal string "
    "rounded half-even to 2 places; quantities are exact decimal strings; margin_pct is "
    "100 × margin / revenue rounded half-even to 2 places, null where revenue is 0. Another "
    "tenant's objects answer 404.",
    paths={
        "/api/v1/sales": _operation(
            "listSales",
            "Sales, filtered, sorted, keyset-paginated, with totals of the whole filtered set",
            _with_csv(_json(_ref("SalesPage"), "A page of sales (or, format=csv, every matching sale).")),
            [
                DATE_FROM,
                DATE_TO,
                _query("customer", _text(), "Customer name contains this (case-insensitive)."),
                _query("status", {"type": "string", "enum": list(SALE_STATUSES)}, "Sale status."),
                _query("type", {"type": "string", "enum": list(SALE_TYPES)}, "Transaction type."),
                _query("source", {"type": "string", "enum": list(SOURCES)}, "Where the sale came from."),
                _query("external_id", _text(), "Exact id in the source system."),
                _query("sku", _text(), "Sales with a line of this sku."),
                _query("shortage", {"type": "boolean"}, "Sales with (true) or without (false) a shortage."),
                _query(
                    "min_margin_pct",
                    PCT_BOUNDS,
                    "Lowest margin % (exact, unrounded); excludes sales without revenue. Not above max_margin_pct.",
                ),
                _query(
                    "max_margin_pct", PCT_BOUNDS, "Highest margin % (exact, unrounded); excludes sales without revenue."
                ),
                _query(
                    "sort",
                    {"type": "string", "enum": list(SALE_SORTS), "default": "date"},
                    "Sort key; ties by id in the same direction. Sales without revenue sort as the lowest "
                    "margin_pct; sales without a date as the oldest.",
                ),
                ORDER,
                LIMIT,
                _query(
                    "cursor", CURSOR_SCHEMA, "The `next_cursor` of the previous page, with the same sort and order."
                ),
                FORMAT,
            ],
        ),
        "/api/v1/sales/{id}": _operation(
            "getSale",
            "One sale with its lines, lot allocations, versions and cost revisions",
            _json(_ref("SaleDetail"), "The sale."),
            [_path("id", {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_BIGINT}, "Sale id.")],
            not_found=True,
        ),
        "/api/v1/products/margins": _operation(
            "productMargins",
            "Margins per product over posted sales in a date range",
            _with_csv(
                _json(_obj({"items": {"type": "array", "items": _ref("ProductMargin")}}), "One item per product sold.")
            ),
            [
                DATE_FROM,
                DATE_TO,
                _query(
                    "sort",
                    {"type": "string", "enum": list(MARGIN_SORTS), "default": "margin"},
                    "Sort key; ties by sku. Products without revenue come last when sorting by margin_pct.",
                ),
                ORDER,
                FORMAT,
            ],
            description="Inventory lines only: invoices and sales receipts count as sold, credit memos as "
            "returned (negative revenue and cost).",
        ),
        "/api/v1/products/{sku}/stock": _operation(
            "productStock",
            "Stock of a product: every lot (received, remaining, available or depleted), on hand, WAC, open shortage",
            _json(_ref("Stock"), "The product's stock."),
            [_path("sku", _text(), "Product sku.")],
            not_found=True,
        ),
        "/api/v1/products/{sku}/transactions": _operation(
            "productTransactions",
            "The product's stock transactions (receipts, corrections, sales, reversals, returns), oldest first",
            _with_csv(
                _json(
                    _obj(
                        {"items": {"type": "array", "items": _ref("StockMove")}, "next_cursor": _string(nullable=True)}
                    ),
                    "A page of moves by (date, id), each with the quantity on hand after it.",
                )
            ),
            [_path("sku", _text(), "Product sku."), LIMIT, CURSOR, FORMAT],
            not_found=True,
        ),
        "/api/v1/shortages": _operation(
            "listShortages",
            "Shortages: open ones (lines of posted sales not covered by lots, demand order), or resolved/all",
            _json(
                _obj({"items": {"type": "array", "items": _ref("Shortage")}, "next_cursor": _string(nullable=True)}),
                "A page of shortages.",
            ),
            [
                _query(
                    "status",
                    {"type": "string", "enum": ["open", "resolved", "all"], "default": "open"},
                    "open: short now, in demand order; resolved or all: by when first recorded (since), then id.",
                ),
                LIMIT,
                CURSOR,
            ],
        ),
        "/api/v1/tenant": _operation(
            "getTenant",
            "The API key's tenant: name, home currency, plan, receiving, whether sales tracking is on",
            _json(_ref("Tenant"), "The tenant."),
            [],
            gated=False,
        ),
        "/api/v1/events/{event_id}": _operation(
            "eventStatus",
            "Whether an event accepted by ingest has been applied by costing",
            _json(_ref("EventStatus"), "The event's status."),
            [_path("event_id", UUID, "The event id ingest answered with.")],
            not_found=True,
        ),
    },
    schemas={
        "Money": _string(pattern=MONEY_PATTERN, example="67.50", description="Amount rounded half-even to 2 places."),
        "Quantity": _string(pattern=QUANTITY_PATTERN, example="12.5", description="Exact decimal quantity."),
        "Percent": _string(
            nullable=True,
            pattern=MONEY_PATTERN,
            example="60.00",
            description="100 × margin / revenue, half-even to 2 places; null where revenue is 0.",
        ),
        "SaleItem": _obj(SALE_ITEM_PROPERTIES),
        "SaleDetail": SALE_DETAIL,
        "SaleLine": LINE,
        "Allocation": ALLOCATION,
        "SaleVersion": VERSION,
        "CostRevision": COST_REVISION,
        "SalesPage": SALES_PAGE,
        "ProductMargin": PRODUCT_MARGIN,
        "Lot": LOT,
        "Stock": STOCK,
        "Shortage": SHORTAGE,
        "StockMove": STOCK_MOVE,
        "Tenant": TENANT,
        "EventStatus": EVENT_STATUS,
        "Error": ERROR,
        "InvalidParameter": INVALID_PARAMETER,
        "InvalidCursor": INVALID_CURSOR,
    },
)
