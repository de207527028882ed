"""Presentation: rows to JSON-ready dicts. Rounding happens here and only here:
money half-even to the minor unit (2 places), quantities exactly as stored (no
exponent, no trailing zeros), margin % half-even to 2 places, null without revenue.
Every margin is revenue - cost of the full-precision stored values, then rounded.
Dates and timestamps stay ``date``/``datetime``: the JSON encoder (orjson, in C)
writes them as ISO 8601, as ``isoformat()`` would, several times faster.

Arithmetic names the wide context (shared.money.WIDE) on each operation rather than
entering it with ``wide()``: the same results, without a context switch per value
(this runs for every number of every list page)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import asyncpg

from services.query.views.products import Stock
from services.query.views.sale_detail import SaleDetail
from shared.money import WIDE, ZERO, wide

#: A JSON object, ready for shared.web.json_response.
Json = dict[str, Any]

HUNDRED = Decimal(100)
CENT = Decimal("0.01")  # the minor unit: money and margin % are shown to 2 places


def money(value: Decimal) -> str:
    """'12.35' for Decimal('12.345001'); never '-0.00'."""
    text = str(value.quantize(CENT, ROUND_HALF_EVEN, WIDE))
    return "0.00" if text == "-0.00" else text


def quantity(value: Decimal) -> str:
    """A stored quantity as written: Decimal('12.500') -> '12.5', Decimal('1E+1') -> '10'."""
    if value == 0:
        return "0"
    return format(value.normalize(WIDE), "f")


def margin_pct(margin: Decimal, revenue: Decimal) -> str | None:
    """100 × margin / revenue, half-even to 2 places; None where revenue is 0."""
    if revenue == 0:
        return None
    return money(WIDE.divide(WIDE.multiply(margin, HUNDRED), revenue))


def totals(revenue: Decimal, cost: Decimal) -> Json:
    margin = WIDE.subtract(revenue, cost)
    return {
        "revenue": money(revenue),
        "cost": money(cost),
        "margin": money(margin),
        "margin_pct": margin_pct(margin, revenue),
    }


def sale_item(r: asyncpg.Record) -> Json:
    return {
        "id": r["id"],
        "source": r["source"],
        "type": r["type"],
        "external_id": r["external_id"],
        "doc_number": r["doc_number"],
        "date": r["txn_date"],
        "customer": r["customer"],
        **totals(r["revenue"], r["cost"]),
        "status": r["status"],
        "shortage": r["has_shortage"],
        "updated_at": r["updated_at"],
    }


def summary(count: int, revenue: Decimal, cost: Decimal) -> Json:
    return {
        "count": count,
        "revenue": money(revenue),
        "cost": money(cost),
        "margin": money(WIDE.subtract(revenue, cost)),
    }


def allocation(r: asyncpg.Record) -> Json:
    cost = WIDE.multiply(r["quantity"], r["unit_cost"])
    return {
        "lot_number": r["lot_number"],
        "received_at": r["received_at"],
        "quantity": quantity(r["quantity"]),
        "unit_cost": money(r["unit_cost"]),
        "cost": money(cost),
    }


def line(r: asyncpg.Record, allocations: Iterable[asyncpg.Record]) -> Json:
    return {
        "line_no": r["line_no"],
        "sku": r["sku"],
        "description": r["description"],
        "kind": r["kind"],
        "quantity": quantity(r["quantity"]),
        **totals(r["revenue"], r["cost"]),
        "shortage_quantity": quantity(r["shortage_qty"]),
        "shortage_cost": money(r["shortage_cost"]),
        "flags": list(r["flags"]),
        "allocations": [allocation(a) for a in allocations],
    }


QBO_VERSION_STRIDE = 1_000_000  # services/ingest/qbo/normalize.py: SyncToken × 1,000,000 + re-map


def version(r: asyncpg.Record, source: str | None = None) -> Json:
    """A version as its source numbers it: for QuickBooks the SyncToken (``version``) and the
    re-map counter (``remap``: re-normalizations of that SyncToken after a mapping change),
    not the internal ordering key SyncToken × 1,000,000 + re-map; other sources: as sent,
    ``remap`` null."""
    number, remap = r["version"], None
    if source == "quickbooks" and number is not None:
        number, remap = divmod(int(number), QBO_VERSION_STRIDE)
    return {
        "version": number,
        "remap": remap,
        "event_id": str(r["event_id"]),
        "event_type": r["event_type"],
        "applied": r["applied"],
        "note": r["note"],
        "received_at": r["received_at"],
    }


def cost_revision(r: asyncpg.Record) -> Json:
    return {
        "line_no": r["line_no"],
        "old_cost": money(r["old_cost"]),
        "new_cost": money(r["new_cost"]),
        "cause": r["cause"],
        "event_id": str(r["event_id"]),
        "created_at": r["created_at"],
    }


def sale_detail(detail: SaleDetail) -> Json:
    by_line: dict[int, list[asyncpg.Record]] = {}
    for a in detail.allocations:
        by_line.setdefault(a["line_id"], []).append(a)
    return {
        **sale_item(detail.sale),
        "notes": detail.sale["notes"],
        "lines": [line(r, by_line.get(r["id"], [])) for r in detail.lines],
        "versions": [version(r, detail.sale["source"]) for r in detail.versions],
        "cost_revisions": [cost_revision(r) for r in detail.revisions],
    }


def product_margin(r: asyncpg.Record) -> Json:
    return {
        "sku": r["sku"],
        "name": r["name"],
        "quantity_sold": quantity(r["quantity_sold"]),
        "quantity_returned": quantity(r["quantity_returned"]),
        **totals(r["revenue"], r["cost"]),
        "shortage_quantity": quantity(r["shortage_quantity"]),
    }


def lot(r: asyncpg.Record) -> Json:
    return {
        "lot_number": r["lot_number"],
        "received_at": r["received_at"],
        "quantity": quantity(r["quantity"]),
        "remaining": quantity(r["remaining"]),
        "unit_cost": money(r["unit_cost"]),
        "is_return": r["is_return"],
        "status": "available" if r["remaining"] > 0 else "depleted",
    }


def stock(s: Stock) -> Json:
    with wide():
        on_hand = sum((r["remaining"] for r in s.lots), ZERO)
    return {
        "sku": s.sku,
        "name": s.name,
        "on_hand": quantity(on_hand),
        "wac": money(s.wac),
        "open_shortage": quantity(s.open_shortage),
        "lots": [lot(r) for r in s.lots],
    }


def shortage(r: asyncpg.Record) -> Json:
    """A shortage: its sale, line and figures; ``wac_estimate`` is the cost per unit it is
    valued at (the product's WAC when it was costed: shortage cost / quantity short)."""
    short = r["shortage_qty"]
    return {
        "sale_id": r["sale_id"],
        "external_id": r["external_id"],
        "type": r["type"],
        "date": r["txn_date"],
        "customer": r["customer"],
        "sale": {"id": r["sale_id"], "type": r["type"], "external_id": r["external_id"], "date": r["txn_date"]},
        "line_no": r["line_no"],
        "sku": r["sku"],
        "shortage_quantity": quantity(short),
        "quantity_short": quantity(short),
        "wac_estimate": money(WIDE.divide(r["shortage_cost"], short)) if short else money(ZERO),
        "shortage_cost": money(r["shortage_cost"]),
        "status": "open" if r["resolved_at"] is None else "resolved",
        "since": r["opened_at"],
        "resolved_at": r["resolved_at"],
    }


def stock_move(r: asyncpg.Record) -> Json:
    sale = None
    if r["sale_id"] is not None:
        sale = {"id": r["sale_id"], "type": r["sale_type"], "external_id": r["sale_external_id"]}
    return {
        "date": r["moved_at"],
        "kind": r["kind"],
        "quantity": quantity(r["quantity"]),
        "lot_number": r["lot_number"],
        "sale": sale,
        "line_no": r["line_no"],
        "on_hand": quantity(r["on_hand"]),
    }
