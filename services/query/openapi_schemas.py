"""The schemas of the query API's OpenAPI document (services/query/openapi.py): the
objects its operations answer with, money as strings with exactly 2 decimals, quantities as
plain decimal strings, nullable fields marked nullable, objects closed."""

from __future__ import annotations

from typing import Any

from services.query.params import SALE_STATUSES, SALE_TYPES, SOURCES
from shared.openapi import error_schema, obj
from shared.openapi import ref as _ref
from shared.openapi import string as _string

MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"
QUANTITY_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def _obj(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """A closed object, every property required."""
    return obj(properties, description=description)


MONEY = _ref("Money")
QUANTITY = _ref("Quantity")
PERCENT = _ref("Percent")
DATE_TIME = _string(format="date-time")
UUID = _string(format="uuid")

SALE_ITEM_PROPERTIES = {
    "id": {"type": "integer", "format": "int64", "minimum": 1},
    "source": {"type": "string", "enum": list(SOURCES)},
    "type": {"type": "string", "enum": list(SALE_TYPES)},
    "external_id": {"type": "string"},
    "doc_number": _string(nullable=True),
    "date": _string(
        nullable=True,
        format="date",
        description="Transaction date; null for a sale removed before any version of it arrived.",
    ),
    "customer": _string(nullable=True),
    "revenue": MONEY,
    "cost": MONEY,
    "margin": MONEY,
    "margin_pct": PERCENT,
    "status": {"type": "string", "enum": list(SALE_STATUSES)},
    "shortage": {"type": "boolean", "description": "Some line could not be covered by lots (costed at WAC)."},
    "updated_at": DATE_TIME,
}

ALLOCATION = _obj(
    {
        "lot_number": {"type": "string"},
        "received_at": DATE_TIME,
        "quantity": QUANTITY,
        "unit_cost": MONEY,
        "cost": MONEY,
    }
)

LINE = _obj(
    {
        "line_no": {"type": "integer", "minimum": 1},
        "sku": _string(nullable=True),
        "description": _string(nullable=True),
        "kind": {"type": "string", "enum": ["inventory", "non_inventory", "service", "shipping", "unmapped"]},
        "quantity": QUANTITY,
        "revenue": MONEY,
        "cost": MONEY,
        "margin": MONEY,
        "margin_pct": PERCENT,
        "shortage_quantity": QUANTITY,
        "shortage_cost": MONEY,
        "flags": {"type": "array", "items": {"type": "string"}},
        "allocations": {"type": "array", "items": _ref("Allocation")},
    }
)

VERSION = _obj(
    {
        "version": {
            "type": "integer",
            "nullable": True,
            "description": "The source's version number: for QuickBooks the entity's SyncToken.",
        },
        "remap": {
            "type": "integer",
            "nullable": True,
            "description": "QuickBooks only: how many times this SyncToken was re-mapped (a product mapping "
            "changed and the sale was re-emitted); 0 for the version as read. Null for other "
            "sources.",
        },
        "event_id": UUID,
        "event_type": {"type": "string"},
        "applied": {"type": "boolean"},
        "note": _string(nullable=True),
        "received_at": DATE_TIME,
    }
)

COST_REVISION = _obj(
    {
        "line_no": {"type": "integer"},
        "old_cost": MONEY,
        "new_cost": MONEY,
        "cause": {"type": "string"},
        "event_id": UUID,
        "created_at": DATE_TIME,
    }
)

SALE_DETAIL = _obj(
    {
        **SALE_ITEM_PROPERTIES,
        "notes": _string(nullable=True, description="A manual sale's notes, as last entered; null for other sources."),
        "lines": {"type": "array", "items": _ref("SaleLine")},
        "versions": {"type": "array", "items": _ref("SaleVersion")},
        "cost_revisions": {"type": "array", "items": _ref("CostRevision")},
    }
)

SALES_PAGE = _obj(
    {
        "items": {"type": "array", "items": _ref("SaleItem")},
        "next_cursor": _string(nullable=True, description="Pass as `cursor` for the next page; null on the last page."),
        "summary": _obj(
            {"count": {"type": "integer", "minimum": 0}, "revenue": MONEY, "cost": MONEY, "margin": MONEY},
            "Totals over the whole filtered set, not just this page.",
        ),
    }
)

PRODUCT_MARGIN = _obj(
    {
        "sku": {"type": "string"},
        "name": _string(nullable=True),
        "quantity_sold": QUANTITY,
        "quantity_returned": QUANTITY,
        "revenue": MONEY,
        "cost": MONEY,
        "margin": MONEY,
        "margin_pct": PERCENT,
        "shortage_quantity": QUANTITY,
    }
)

LOT = _obj(
    {
        "lot_number": {"type": "string"},
        "received_at": DATE_TIME,
        "quantity": QUANTITY,
        "remaining": QUANTITY,
        "unit_cost": MONEY,
        "is_return": {"type": "boolean"},
        "status": {"type": "string", "enum": ["available", "depleted"]},
    }
)

STOCK = _obj(
    {
        "sku": {"type": "string"},
        "name": _string(nullable=True),
        "on_hand": QUANTITY,
        "wac": MONEY,
        "open_shortage": QUANTITY,
        "lots": {"type": "array", "items": _ref("Lot")},
    }
)

SHORTAGE = _obj(
    {
        "sale_id": {"type": "integer", "format": "int64", "minimum": 1},
        "external_id": {"type": "string"},
        "type": {"type": "string", "enum": list(SALE_TYPES)},
        "date": _string(format="date"),
        "customer": _string(nullable=True),
        "sale": _obj(
            {
                "id": {"type": "integer", "format": "int64", "minimum": 1},
                "type": {"type": "string", "enum": list(SALE_TYPES)},
                "external_id": {"type": "string"},
                "date": _string(format="date"),
            }
        ),
        "line_no": {"type": "integer", "minimum": 1},
        "sku": {"type": "string"},
        "shortage_quantity": QUANTITY,
        "quantity_short": QUANTITY,
        "wac_estimate": _ref("Money"),
        "shortage_cost": MONEY,
        "status": {"type": "string", "enum": ["open", "resolved"]},
        "since": _string(
            nullable=True, format="date-time", description="When the shortage was first recorded (null: before 0025)."
        ),
        "resolved_at": _string(nullable=True, format="date-time", description="When it was resolved; null while open."),
    }
)

STOCK_MOVE = _obj(
    {
        "date": DATE_TIME,
        "kind": {"type": "string", "enum": ["RECEIPT", "CORRECTION", "SALE", "SALE_REVERSAL", "RETURN"]},
        "quantity": QUANTITY,
        "lot_number": _string(nullable=True),
        "sale": {
            "type": "object",
            "nullable": True,
            "required": ["id", "type", "external_id"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "format": "int64", "minimum": 1},
                "type": {"type": "string", "enum": list(SALE_TYPES)},
                "external_id": {"type": "string"},
            },
        },
        "line_no": {"type": "integer", "nullable": True},
        "on_hand": QUANTITY,
    },
    "A change of the product's quantity on hand; `on_hand` is the running quantity after it "
    "(received + returned - sold; negative while sales are short).",
)

TENANT = _obj(
    {
        "name": {"type": "string"},
        "home_currency": {"type": "string"},
        "plan": {"type": "string", "enum": ["starter", "standard", "advanced"]},
        "receiving_enabled": {"type": "boolean"},
        "sales_tracking": {"type": "boolean", "description": "Advanced plan and receiving enabled."},
    }
)

EVENT_STATUS = _obj(
    {
        "event_id": UUID,
        "status": {"type": "string", "enum": ["pending", "applied", "dead_lettered"]},
        "error": _string(nullable=True, description="Why the event was dead-lettered."),
    }
)

ERROR = error_schema()
INVALID_PARAMETER = _obj(
    {
        "error": {"type": "string", "enum": ["invalid_parameter"]},
        "detail": _obj({"parameter": {"type": "string"}, "problem": {"type": "string"}}),
    }
)


# --- parameters ---------------------------------------------------------------------------
