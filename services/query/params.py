"""Request parameters of the query API, checked at the edge. Every problem is a 400
``{"error": "invalid_parameter", "detail": {"parameter": name, "problem": ...}}``;
nothing unchecked reaches SQL (no NUL characters, bounded numbers and lengths)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from multidict import MultiMapping

from services.query import cursor as cursors
from services.query.views import SORT_KEYS, SalesQuery
from shared.money import wide
from shared.web import ApiError

MAX_TEXT = 200
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
#: Bound of margin % filters; far beyond any real margin.
MAX_PCT = Decimal("1e15")
PCT_PLACES = Decimal("1e-12")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500

SALE_STATUSES = ("posted", "voided", "deleted")
SALE_TYPES = ("invoice", "sales_receipt", "credit_memo")
SOURCES = ("quickbooks", "manual")
ORDERS = ("asc", "desc")
SALE_SORTS = tuple(SORT_KEYS)
MARGIN_SORTS = ("margin", "margin_pct", "revenue", "cost", "quantity_sold")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"[0-9]{1,19}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def invalid(parameter: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_parameter", {"parameter": parameter, "problem": problem})


class Query:
    """The query string of one request, read one parameter at a time."""

    def __init__(self, query: MultiMapping[str]):
        self.query = query

    def raw(self, name: str) -> str | None:
        values = self.query.getall(name, [])
        if not values:
            return None
        if len(values) > 1:
            raise invalid(name, "given more than once")
        return values[0]

    def text(self, name: str, max_length: int = MAX_TEXT) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        return checked_text(name, value, max_length)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if value not in choices:
            raise invalid(name, f"one of {', '.join(choices)}")
        return value

    def date(self, name: str) -> date | None:
        value = self.raw(name)
        if value is None:
            return None
        if not _DATE.fullmatch(value):
            raise invalid(name, "a date YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise invalid(name, "a date YYYY-MM-DD") from exc

    def date_range(self) -> tuple[date | None, date | None]:
        first, last = self.date("from"), self.date("to")
        if first is not None and last is not None and first > last:
            raise invalid("from", "must not be after to")
        return first, last

    def boolean(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise invalid(name, "true or false")
        return value == "true"

    def percent(self, name: str) -> Decimal | None:
        value = self.raw(name)
        if value is None:
            return None
        if len(value) > 100 or not _NUMBER.fullmatch(value):
            raise invalid(name, "a decimal number")
        number = Decimal(value)
        if abs(number) > MAX_PCT:
            raise invalid(name, f"between -{MAX_PCT:f} and {MAX_PCT:f}")
        with wide():
            return number.quantize(PCT_PLACES)

    def limit(self) -> int:
        value = self.raw("limit")
        if value is None:
            return DEFAULT_LIMIT
        if not _INTEGER.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
            raise invalid("limit", f"an integer from 1 to {MAX_LIMIT}")
        return int(value)


def checked_text(name: str, value: str, max_length: int = MAX_TEXT) -> str:
    if not value:
        raise invalid(name, "must not be empty")
    if len(value) > max_length:
        raise invalid(name, f"at most {max_length} characters")
    if "\x00" in value:
        raise invalid(name, "must not contain NUL characters")
    return value


def path_id(value: str, name: str = "id") -> int:
    if not _INTEGER.fullmatch(value) or not 1 <= int(value) <= MAX_BIGINT:
        raise invalid(name, f"an integer from 1 to {MAX_BIGINT}")
    return int(value)


def path_uuid(value: str, name: str) -> uuid.UUID:
    try:
        if len(value) <= 45:
            return uuid.UUID(value)
    except ValueError:
        pass
    raise invalid(name, "a UUID")


def _like_pattern(substring: str) -> str:
    """An ILIKE pattern matching ``substring`` literally anywhere."""
    escaped = substring.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- sales list ------------------------------------------------------------------------

def sales_query(query: MultiMapping[str]) -> SalesQuery:
    q = Query(query)
    first, last = q.date_range()
    min_pct, max_pct = q.percent("min_margin_pct"), q.percent("max_margin_pct")
    if min_pct is not None and max_pct is not None and min_pct > max_pct:
        raise invalid("min_margin_pct", "must not be greater than max_margin_pct")
    customer = q.text("customer")
    given: dict[str, Any] = {
        "from": first, "to": last,
        "customer": _like_pattern(customer) if customer is not None else None,
        "status": q.choice("status", SALE_STATUSES),
        "type": q.choice("type", SALE_TYPES),
        "source": q.choice("source", SOURCES),
        "external_id": q.text("external_id"),
        "sku": q.text("sku"),
        "shortage": q.boolean("shortage"),
        "min_margin_pct": min_pct, "max_margin_pct": max_pct,
    }
    sort = q.choice("sort", SALE_SORTS, "date")
    order = q.choice("order", ORDERS, "desc")
    limit = q.limit()
    raw_cursor = q.raw("cursor")
    after = _sales_cursor(raw_cursor, sort, order) if raw_cursor is not None else None
    return SalesQuery({k: v for k, v in given.items() if v is not None}, sort, order, limit, after)


def sales_cursor(sort: str, order: str, key: str, sale_id: int) -> str:
    return cursors.encode({"kind": "sales", "sort": sort, "order": order, "key": key, "id": sale_id})


def _sales_cursor(raw: str, sort: str, order: str) -> tuple[str, int]:
    try:
        payload = cursors.decode(raw)
    except cursors.CursorError as exc:
        raise invalid("cursor", str(exc)) from exc
    if payload.get("kind") != "sales":
        raise invalid("cursor", "not a cursor from this API")
    if (payload.get("sort"), payload.get("order")) != (sort, order):
        raise invalid("cursor", "the cursor belongs to another sort or order; start again without it")
    key, sale_id = payload.get("key"), payload.get("id")
    if not _valid_int(sale_id, MAX_BIGINT) or not isinstance(key, str) or not _valid_key(sort, key):
        raise invalid("cursor", "not a cursor from this API")
    return key, sale_id


def _valid_int(value: Any, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def _valid_key(sort: str, key: str) -> bool:
    if SORT_KEYS[sort].sql_type == "date":
        if key == "-infinity":
            return True
        try:
            return bool(_DATE.fullmatch(key)) and date.fromisoformat(key) is not None
        except ValueError:
            return False
    if key == "-Infinity":
        return sort == "margin_pct"
    return len(key) <= 100 and bool(_DECIMAL_TEXT.fullmatch(key))


# --- shortages ---------------------------------------------------------------------------

def page_args(query: MultiMapping[str]) -> tuple[int, str | None]:
    q = Query(query)
    return q.limit(), q.raw("cursor")


def shortages_cursor(row: Mapping[str, Any]) -> str:
    return cursors.encode({"kind": "shortages", "key": [
        row["txn_date"].isoformat(), row["source_created_at"].isoformat(), row["key_source"], row["key_external_id"],
        row["key_sale_type"], row["line_no"]]})


def decode_shortages_cursor(raw: str) -> tuple:
    problem = invalid("cursor", "not a cursor from this API")
    try:
        payload = cursors.decode(raw)
    except cursors.CursorError as exc:
        raise problem from exc
    key = payload.get("key")
    if payload.get("kind") != "shortages" or not isinstance(key, list) or len(key) != 6:
        raise problem
    txn_date, created, source, external_id, sale_type, line_no = key
    texts = (txn_date, created, source, external_id, sale_type)
    if not all(isinstance(t, str) and len(t) <= 10_000 and "\x00" not in t for t in texts):
        raise problem
    if not _valid_int(line_no, MAX_INT):
        raise problem
    try:
        day = date.fromisoformat(txn_date) if _DATE.fullmatch(txn_date) else None
        moment = datetime.fromisoformat(created)
    except ValueError as exc:
        raise problem from exc
    if day is None or moment.tzinfo is None:
        raise problem
    return day, moment, source, external_id, sale_type, line_no


# --- product margins ---------------------------------------------------------------------

def margins_args(query: MultiMapping[str]) -> tuple[date, date, str, str]:
    q = Query(query)
    first, last = q.date_range()
    sort = q.choice("sort", MARGIN_SORTS, "margin")
    order = q.choice("order", ORDERS, "desc")
    return first or date.min, last or date.max, sort, order

