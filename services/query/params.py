"""Request parameters of the query API, checked at the edge. Every problem is a 400
``{"error": "invalid_parameter", "detail": {"parameter": name, "problem": ...}}``;
nothing unchecked reaches SQL (no NUL characters, bounded numbers and lengths)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, overload

import asyncpg
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
SOURCES = ("quickbooks", "xero", "manual")
ORDERS = ("asc", "desc")
SALE_SORTS = tuple(SORT_KEYS)
MARGIN_SORTS = ("margin", "margin_pct", "revenue", "cost", "quantity_sold")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"[0-9]{1,19}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def invalid(parameter: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_parameter", {"parameter": parameter, "problem": problem})


#: ``date`` under a name Query's own ``date`` method does not hide.
Day = date


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

    @overload
    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str: ...
    @overload
    def choice(self, name: str, choices: tuple[str, ...], default: None = None) -> str | None: ...
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

    def date_range(self) -> tuple[Day | None, Day | None]:
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
        "from": first,
        "to": last,
        "customer": _like_pattern(customer) if customer is not None else None,
        "status": q.choice("status", SALE_STATUSES),
        "type": q.choice("type", SALE_TYPES),
        "source": q.choice("source", SOURCES),
        "external_id": q.text("external_id"),
        "sku": q.text("sku"),
        "shortage": q.boolean("shortage"),
        "min_margin_pct": min_pct,
        "max_margin_pct": max_pct,
    }
    sort = q.choice("sort", SALE_SORTS, "date")
    order = q.choice("order", ORDERS, "desc")
    limit = q.limit()
    raw_cursor = q.raw("cursor")
    after = _sales_cursor(raw_cursor, sort, order) if raw_cursor is not None else None
    return SalesQuery({k: v for k, v in given.items() if v is not None}, sort, order, limit, after)


def sales_cursor(sort: str, order: str, key: str, sale_id: int) -> str:
    return cursors.encode({"kind": "sales", "sort": sort, "order": order, "key": key, "id": sale_id})


SALES_CURSOR_FIELDS = frozenset({"kind", "sort", "order", "key", "id"})
#: Longest numeric sort key text accepted back (a sale's revenue/cost/margin/margin %
#: as PostgreSQL prints it is far shorter).
MAX_NUMERIC_KEY = 100


def _sales_cursor(raw: str, sort: str, order: str) -> tuple[str, int]:
    """The (key text, sale id) after which the page starts. The payload must be exactly
    what sales_cursor made for this sort and order: its key a valid text of the sort
    column's SQL type and the id a bigint; anything else is 400 invalid_cursor."""
    try:
        payload = cursors.decode(raw)
    except cursors.CursorError as exc:
        raise cursors.invalid_cursor() from exc
    if set(payload) != SALES_CURSOR_FIELDS or payload["kind"] != "sales":
        raise cursors.invalid_cursor()
    if not (isinstance(payload["sort"], str) and isinstance(payload["order"], str)) or (
        payload["sort"],
        payload["order"],
    ) != (sort, order):
        raise cursors.invalid_cursor()  # another sort or order's cursor: start again without it
    key, sale_id = payload["key"], payload["id"]
    if not _valid_int(sale_id, MAX_BIGINT) or not isinstance(key, str) or not _valid_key(sort, key):
        raise cursors.invalid_cursor()
    return key, sale_id


def _valid_int(value: Any, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def _valid_date_text(key: str) -> bool:
    try:
        return bool(_DATE.fullmatch(key)) and date.fromisoformat(key) is not None
    except ValueError:
        return False


def _valid_key(sort: str, key: str) -> bool:
    if SORT_KEYS[sort].sql_type == "date":
        return key == "-infinity" or _valid_date_text(key)
    if key == "-Infinity":
        return sort == "margin_pct"
    return len(key) <= MAX_NUMERIC_KEY and bool(_DECIMAL_TEXT.fullmatch(key))


def _valid_text(value: Any) -> bool:
    """A str PostgreSQL's text can hold: bounded, no NUL, encodable (no lone surrogate)."""
    if not isinstance(value, str) or len(value) > 10_000 or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- shortages ---------------------------------------------------------------------------


def page_args(query: MultiMapping[str]) -> tuple[int, str | None]:
    q = Query(query)
    return q.limit(), q.raw("cursor")


def shortages_cursor(row: asyncpg.Record | Mapping[str, Any]) -> str:
    return cursors.encode(
        {
            "kind": "shortages",
            "key": [
                row["txn_date"].isoformat(),
                row["source_created_at"].isoformat(),
                row["key_source"],
                row["key_external_id"],
                row["key_sale_type"],
                row["line_no"],
            ],
        }
    )


def decode_shortages_cursor(raw: str) -> tuple[date, datetime, str, str, str, int]:
    problem = cursors.invalid_cursor()
    try:
        payload = cursors.decode(raw)
    except cursors.CursorError as exc:
        raise problem from exc
    key = payload.get("key")
    if set(payload) != {"kind", "key"} or payload["kind"] != "shortages" or not isinstance(key, list) or len(key) != 6:
        raise problem
    txn_date, created, source, external_id, sale_type, line_no = key
    texts = (txn_date, created, source, external_id, sale_type)
    if not all(_valid_text(t) for t in texts):
        raise problem
    if not _valid_int(line_no, MAX_INT):
        raise problem
    if not _valid_date_text(txn_date):
        raise problem
    try:
        day = date.fromisoformat(txn_date)
        moment = datetime.fromisoformat(created)
        # timestamptz is sent as UTC: an offset must not carry it out of datetime's range.
        in_range = moment.tzinfo is not None and moment.astimezone(UTC) is not None
    except (ValueError, OverflowError) as exc:
        raise problem from exc
    if not in_range:
        raise problem
    return day, moment, source, external_id, sale_type, line_no


SHORTAGE_STATUSES = ("open", "resolved", "all")
FORMATS = ("json", "csv")


def output_format(query: MultiMapping[str]) -> str:
    """``format=json`` (default) or ``csv`` (every matching row, streamed)."""
    return Query(query).choice("format", FORMATS, "json")


def shortage_status(query: MultiMapping[str]) -> str:
    return Query(query).choice("status", SHORTAGE_STATUSES, "open")


def _moment(text: Any) -> datetime | None:
    if not _valid_text(text) or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo is not None and moment.astimezone(UTC) is not None else None
    except (ValueError, OverflowError):
        return None


def keyset_cursor(kind: str, at: datetime, row_id: int) -> str:
    """A cursor of a list ordered by (a timestamp, id): shortage records, stock moves."""
    return cursors.encode({"kind": kind, "key": [at.isoformat(), row_id]})


def decode_keyset_cursor(raw: str, kind: str) -> tuple[datetime, int]:
    try:
        payload = cursors.decode(raw)
    except cursors.CursorError as exc:
        raise cursors.invalid_cursor() from exc
    key = payload.get("key")
    if set(payload) != {"kind", "key"} or payload["kind"] != kind or not isinstance(key, list) or len(key) != 2:
        raise cursors.invalid_cursor()
    moment = _moment(key[0])
    if moment is None or not _valid_int(key[1], MAX_BIGINT):
        raise cursors.invalid_cursor()
    return moment, key[1]


# --- product margins ---------------------------------------------------------------------


def margins_args(query: MultiMapping[str]) -> tuple[date, date, str, str]:
    q = Query(query)
    first, last = q.date_range()
    sort = q.choice("sort", MARGIN_SORTS, "margin")
    order = q.choice("order", ORDERS, "desc")
    return first or date.min, last or date.max, sort, order
