"""The schemas of the ingest API's OpenAPI document (services/ingest/openapi.py): request
bodies derived from the pydantic models (converted to OpenAPI 3.0), and the objects the
operations answer with."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from services.ingest.schemas import LotBody, LotPatchBody, ProductBody, SaleBody
from shared.openapi import error_schema
from shared.openapi import obj as _obj
from shared.openapi import ref as _ref
from shared.openapi import string as _string

#: An amount as the API answers it: the exact stored decimal, as a string.
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
TEXT_MAX = 200
IDEMPOTENCY_KEY_MAX = 200


# --- request bodies from the pydantic models ---------------------------------------------


def _amount(bound: dict[str, Any]) -> dict[str, Any]:
    """pydantic renders a constrained Decimal as anyOf number|string with a bare gt/ge."""
    number: dict[str, Any] = {"type": "number"}
    if "gt" in bound:
        number.update(minimum=bound["gt"], exclusiveMinimum=True)
    elif "ge" in bound:
        number["minimum"] = bound["ge"]
    # No pattern on the string: the service reads what Decimal reads ("1e3" too), a
    # pattern would make schemathesis expect a refusal of such strings.
    return {
        "anyOf": [{"type": "string"}, number],
        "description": 'A decimal amount: string (e.g. "12.50") or JSON number, read exactly; at most 6 '
        "decimal places, less than 10^12 in absolute value.",
    }


def _is_amount(schema: dict[str, Any]) -> bool:
    variants = schema.get("anyOf")
    return (
        isinstance(variants, list)
        and len(variants) == 2
        and sorted(v.get("type", "") for v in variants) == ["number", "string"]
        and all(set(v) == {"type"} for v in variants)
    )


def _to_openapi30(schema: Any) -> Any:
    """pydantic's JSON Schema (2020-12) to OpenAPI 3.0: nullable, no titles, amounts."""
    if isinstance(schema, list):
        return [_to_openapi30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {k: v for k, v in schema.items() if k not in ("title", "$defs")}
    if schema.get("default", ...) is None:
        del schema["default"]
    if _is_amount(schema):
        bound = {k: schema[k] for k in ("gt", "ge") if k in schema}
        extra = {k: v for k, v in schema.items() if k not in ("anyOf", "gt", "ge")}
        return {**_amount(bound), **extra}
    variants = schema.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        inner = _to_openapi30(rest[0]) if len(rest) == 1 else {"anyOf": _to_openapi30(rest)}
        extra = {k: _to_openapi30(v) for k, v in schema.items() if k != "anyOf"}
        if "$ref" in inner:  # a $ref takes no siblings in 3.0
            inner = {"allOf": [inner]}
        return {**inner, **extra, "nullable": True}
    return {k: (_to_openapi30(v) if k != "required" else v) for k, v in schema.items()}


def _body_schemas(*models: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Component schemas of the models (and the models they use), OpenAPI 3.0."""
    schemas: dict[str, dict[str, Any]] = {}
    for model in models:
        generated = copy.deepcopy(model.model_json_schema(ref_template="#/components/schemas/{model}"))
        for name, sub in generated.get("$defs", {}).items():
            schemas[name] = _to_openapi30(sub)
        schemas[model.__name__] = _to_openapi30(generated)
    return schemas


BODY_SCHEMAS = _body_schemas(ProductBody, LotBody, LotPatchBody, SaleBody)
BODY_SCHEMAS["LotPatchBody"]["minProperties"] = 1
BODY_SCHEMAS["LotPatchBody"]["description"] = "Give quantity and/or unit_cost."
BODY_SCHEMAS["SaleLineBody"]["description"] = (
    "A line needs a sku or a description; discount at most quantity × unit_price."
)
BODY_SCHEMAS["SaleBody"]["properties"]["currency"]["description"] = (
    "ISO 4217 code; exchange_rate is required when it is not the tenant's home currency."
)
BODY_SCHEMAS["LotBody"]["properties"]["lot_number"]["description"] = "Must not start with RET- (return lots)."

# --- response schemas -------------------------------------------------------------------

DECIMAL = _ref("Decimal")
DATE_TIME = _string(format="date-time")
EVENT_IDS = {
    "type": "array",
    "items": _string(format="uuid"),
    "minItems": 1,
    "description": "The events accepted; their status is at the query API's /api/v1/events/{event_id}.",
}
VERSION = {"type": "integer", "minimum": 1}

PRODUCT = _obj(
    {
        "sku": {"type": "string"},
        "name": {"type": "string"},
        "qbo_item_id": _string(nullable=True),
        "standard_cost": {"allOf": [DECIMAL], "nullable": True},
        "version": VERSION,
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
    }
)
LOT = _obj(
    {
        "sku": {"type": "string"},
        "lot_number": {"type": "string"},
        "quantity": DECIMAL,
        "unit_cost": DECIMAL,
        "received_at": DATE_TIME,
        "version": VERSION,
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
    }
)
CONNECTION = _obj(
    {
        "realm_id": {"type": "string"},
        "status": {"type": "string", "enum": ["connected", "reconnect_required", "disconnected"]},
        "access_expires_at": DATE_TIME,
        "cdc_watermark": _string(nullable=True, format="date-time"),
        "last_synced_at": _string(
            nullable=True,
            format="date-time",
            description="When a catch-up (CDC) last completed and moved the watermark.",
        ),
        "last_error": _string(
            nullable=True,
            description="Why the last catch-up failed, in plain words (no library text); null once a "
            "catch-up succeeds again.",
        ),
        "state": {
            "type": "string",
            "enum": ["active", "syncing", "needs_reconnect", "disconnected"],
            "description": "In plain words: syncing while a catch-up runs (or the first import has not "
            "completed), needs_reconnect when QuickBooks refused the tokens.",
        },
        "last_error_at": _string(
            nullable=True, format="date-time", description="When a catch-up last failed (kept after a later success)."
        ),
        "sync_failures": {
            "type": "integer",
            "minimum": 0,
            "description": "Consecutive failed catch-ups (retried with exponential backoff).",
        },
        "token_refreshes": {"type": "integer", "minimum": 0},
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
    }
)
CHANNEL_CONNECTION = _obj(
    {
        "provider": {"type": "string", "enum": ["quickbooks", "xero"], "description": "The sales channel."},
        **CONNECTION["properties"],
    }
)
ERROR = error_schema("A message, or for validation_failed a list of {field, problem}.")
