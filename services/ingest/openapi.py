"""The OpenAPI 3.0 description of the ingest API, served at /api/v1/openapi.json.

Request bodies are derived from the pydantic models the handlers validate with
(services/ingest/schemas.py), turned into OpenAPI 3.0 (nullable instead of a null
type, amounts as a decimal string or a JSON number); responses are written by hand.
tests/integration/test_ingest_schemathesis.py holds the service to this document.

Not described: ``POST /webhooks/quickbooks`` (Intuit's signed callback, not a client
API) and ``/oauth/quickbooks/*`` (a browser redirect flow); neither is under /api.
"""

from __future__ import annotations

from typing import Any

from services.ingest.openapi_schemas import (
    BODY_SCHEMAS,
    CHANNEL_CONNECTION,
    CONNECTION,
    DATE_TIME,
    DECIMAL_PATTERN,
    ERROR,
    EVENT_IDS,
    IDEMPOTENCY_KEY_MAX,
    LOT,
    PRODUCT,
    VERSION,
)
from shared.openapi import (
    document,
)
from shared.openapi import (
    json_body as _json,
)
from shared.openapi import (
    obj as _obj,
)
from shared.openapi import (
    path_parameter as _path,
)
from shared.openapi import (
    ref as _ref,
)
from shared.openapi import (
    string as _string,
)

# --- parameters and responses -----------------------------------------------------------

SKU = _path("sku", "Product sku.")
LOT_NUMBER = _path("lot_number", "Lot number.")
REFERENCE = _path("reference", "The sale's reference.")
REALM_ID = _path("realm_id", "QuickBooks company (realm) id.")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
    "description": "A retry with the same key and request gets the first answer again; the same key with a "
    "different request is refused (422 idempotency_key_reused).",
}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


UUID_STRING = _string(format="uuid")
SALE_REF = _obj(
    {
        "id": {"type": "integer", "format": "int64", "nullable": True,
               "description": "The query API's sale id; null until the sale is costed."},
        "entity": {"type": "string", "enum": ["Invoice", "SalesReceipt", "CreditMemo"]},
        "qbo_id": {"type": "string", "description": "The QuickBooks id (the sale's external_id)."},
        "type": {"type": "string", "enum": ["invoice", "sales_receipt", "credit_memo"]},
    }
)  # fmt: skip
SYNC_RUN = _obj(
    {
        "sync_id": UUID_STRING,
        "realm_id": {"type": "string"},
        "status": {"type": "string", "enum": ["running", "done", "failed"]},
        "started_at": DATE_TIME,
        "finished_at": _string(nullable=True, format="date-time"),
        "created": {"type": "array", "items": SALE_REF},
        "updated": {"type": "array", "items": SALE_REF},
        "voided": {"type": "array", "items": SALE_REF},
        "deleted": {"type": "array", "items": SALE_REF},
        "skipped": {"type": "integer", "minimum": 0, "description": "Not newer than what was already applied."},
        "failed": {"type": "integer", "minimum": 0},
        "error": _string(nullable=True, description="Why the sync failed, in plain words; null unless failed."),
    }
)
TENANT = _obj(
    {
        "name": {"type": "string"},
        "home_currency": {"type": "string"},
        "plan": {"type": "string", "enum": ["starter", "standard", "advanced"]},
        "receiving_enabled": {"type": "boolean"},
        "sales_tracking": {"type": "boolean"},
    }
)
ERRORS = {
    "400": _error("The body is not JSON (invalid_json), or a malformed parameter or Idempotency-Key."),
    "401": _error("No valid API key (Authorization: Bearer <key>)."),
    "404": _error("No such object for this tenant (another tenant's objects answer 404 too)."),
    "409": _error("Conflicts with the object's state: it exists already, or it is voided/deleted."),
    "403": _error(
        "sales_tracking_unavailable: sales tracking needs the Advanced plan and receiving enabled "
        "(GET /api/v1/tenant says which is missing)."
    ),
    "413": _error("The body is larger than the service's limit."),
    "422": _error(
        "The body fails validation (validation_failed, detail: [{field, problem}]), or the "
        "Idempotency-Key was used for a different request."
    ),
}


def _accepted(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return _json(_obj({"event_ids": EVENT_IDS, **properties}), description)


def _write(
    operation_id: str,
    summary: str,
    body: str | None,
    accepted: dict[str, Any],
    errors: str,
    parameters: list[dict[str, Any]] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [*(parameters or []), IDEMPOTENCY_KEY],
        "responses": {"202": accepted, **{code: ERRORS[code] for code in errors.split()}},
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if description:
        operation["description"] = description
    return operation


def _read(
    operation_id: str, summary: str, ok: dict[str, Any], errors: str, parameters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": parameters or [],
        "responses": {"200": ok, **{code: ERRORS[code] for code in errors.split()}},
    }


def _connection_action(
    operation_id: str,
    summary: str,
    code: str,
    status: str,
    description: str,
    errors: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A POST on one QuickBooks connection, answered with its realm id and new status."""
    ok = _json(
        _obj({"realm_id": {"type": "string"}, "status": {"type": "string", "enum": [status]}, **(extra or {})}),
        description,
    )
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [REALM_ID],
        "responses": {code: ok, **{c: ERRORS[c] for c in errors.split()}},
    }


PRODUCT_ACCEPTED = _accepted({"sku": {"type": "string"}, "version": VERSION}, "Accepted: the product's event.")
LOT_ACCEPTED = _accepted(
    {"sku": {"type": "string"}, "lot_number": {"type": "string"}, "version": VERSION}, "Accepted: the lot's event."
)
SALE_ACCEPTED = _accepted({"reference": {"type": "string"}, "version": VERSION}, "Accepted: the sale's event.")
SALE_REMOVED = _accepted(
    {"reference": {"type": "string"}, "status": {"type": "string", "enum": ["voided", "deleted"]}, "version": VERSION},
    "Accepted: the removal's event.",
)

DOCUMENT: dict[str, Any] = document(
    "Partsemble sales tracking: ingest API",
    "Write API of one tenant (the API key's): catalog products, received lots, manual sales, and the "
    "tenant's QuickBooks connections. A write is accepted (202) once its events are stored; costing "
    "applies them asynchronously. Amounts are taken as decimal strings or JSON numbers (read exactly, "
    "at most 6 decimal places) and answered as decimal strings. Another tenant's objects answer 404. "
    "Not described here: POST /webhooks/quickbooks (Intuit's signed callback) and /oauth/quickbooks/* "
    "(a browser redirect flow).",
    paths={
        "/api/v1/products": {
            "post": _write(
                "createProduct",
                "Create a catalog product (sku required)",
                "ProductBody",
                PRODUCT_ACCEPTED,
                "400 401 409 413 422",
            ),
            "get": _read(
                "listProducts",
                "Catalog products by sku, keyset-paginated",
                _json(
                    _obj(
                        {
                            "items": {"type": "array", "items": _ref("Product")},
                            "next_cursor": _string(nullable=True, description="Pass as `cursor` for the next page."),
                        }
                    ),
                    "A page of products.",
                ),
                "400 401",
                [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                        "description": "Page size.",
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "The `next_cursor` of the previous page (products after this sku).",
                    },
                ],
            ),
        },
        "/api/v1/products/{sku}": {
            "put": _write(
                "putProduct",
                "Create or replace a catalog product",
                "ProductBody",
                PRODUCT_ACCEPTED,
                "400 401 413 422",
                [SKU],
            ),
            "get": _read("getProduct", "One catalog product", _json(_ref("Product"), "The product."), "401 404", [SKU]),
        },
        "/api/v1/lots": {
            "post": _write(
                "receiveLot", "Receive a lot of a known product", "LotBody", LOT_ACCEPTED, "400 401 409 413 422"
            ),
        },
        "/api/v1/lots/{sku}/{lot_number}": {
            "patch": _write(
                "correctLot",
                "Correct a lot's quantity and/or unit cost",
                "LotPatchBody",
                LOT_ACCEPTED,
                "400 401 404 413 422",
                [SKU, LOT_NUMBER],
            ),
            "get": _read("getLot", "One lot", _json(_ref("Lot"), "The lot."), "401 404", [SKU, LOT_NUMBER]),
        },
        "/api/v1/sales": {
            "post": _write(
                "createSale",
                "Enter a manual sale (reference required)",
                "SaleBody",
                SALE_ACCEPTED,
                "400 401 403 409 413 422",
            ),
        },
        "/api/v1/sales/{reference}": {
            "put": _write(
                "editSale",
                "Replace a posted manual sale (same type)",
                "SaleBody",
                SALE_ACCEPTED,
                "400 401 403 404 409 413 422",
                [REFERENCE],
            ),
            "delete": _write(
                "deleteSale", "Delete a manual sale", None, SALE_REMOVED, "400 401 403 404 409 413 422", [REFERENCE]
            ),
        },
        "/api/v1/sales/{reference}/void": {
            "post": _write(
                "voidSale", "Void a manual sale", None, SALE_REMOVED, "400 401 403 404 409 413 422", [REFERENCE]
            ),
        },
        "/api/v1/connections": {
            "get": _read(
                "listAllConnections",
                "The tenant's connections of every sales channel (QuickBooks, Xero)",
                _json(_obj({"items": {"type": "array", "items": _ref("ChannelConnection")}}), "The connections."),
                "401 403",
            ),
        },
        "/api/v1/connections/quickbooks": {
            "get": _read(
                "listConnections",
                "The tenant's QuickBooks connections",
                _json(_obj({"items": {"type": "array", "items": _ref("Connection")}}), "The connections."),
                "401 403",
            ),
        },
        "/api/v1/connections/quickbooks/{realm_id}/sync": {
            "post": _connection_action(
                "syncConnection",
                "Catch up with QuickBooks now",
                "202",
                "sync_requested",
                "The sync is requested; its summary: GET …/syncs/{sync_id}.",
                "401 403 404 409",
                {"sync_id": UUID_STRING},
            ),
        },
        "/api/v1/connections/quickbooks/{realm_id}/syncs/{sync_id}": {
            "get": _read(
                "getSyncRun",
                "What a sync now did",
                _json(SYNC_RUN, "The run: running until its catch-up ends."),
                "401 403 404",
                [REALM_ID, {"name": "sync_id", "in": "path", "required": True, "schema": UUID_STRING}],
            ),
        },
        "/api/v1/tenant": {
            "get": _read(
                "getTenant",
                "The API key's tenant: plan, receiving, sales tracking",
                _json(TENANT, "The tenant."),
                "401",
            ),
        },
        "/api/v1/connections/quickbooks/{realm_id}/disconnect": {
            "post": _connection_action(
                "disconnectConnection",
                "Revoke the tokens and stop syncing",
                "200",
                "disconnected",
                "Disconnected.",
                "401 403 404",
            ),
        },
    },
    schemas={
        **BODY_SCHEMAS,
        "Decimal": _string(pattern=DECIMAL_PATTERN, example="12.5", description="Exact decimal, as stored."),
        "Product": PRODUCT,
        "Lot": LOT,
        "Connection": CONNECTION,
        "ChannelConnection": CHANNEL_CONNECTION,
        "Error": ERROR,
    },
)
