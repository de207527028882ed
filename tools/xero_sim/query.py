"""List filters of the Accounting API (docs/xero.md §3.5): ``where`` (a small subset of Xero's expression
language: ``Field=="text"``, ``!=``, ``Guid("…")``, ``DateTime(y,m,d)`` with ``< <= > >=``, joined by ``AND`` /
``OR``, AND binding tighter), ``Statuses``, ``IDs``, ``InvoiceNumbers``, ``ContactIDs``, ``If-Modified-Since``
(records updated at or after that second, UTC), ``order`` and paging (``page`` 1-based, ``pageSize`` ≤ 1000).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from tools.xero_sim import timefmt
from tools.xero_sim.entities import Document


class QueryError(Exception):
    pass


_CLAUSE = re.compile(
    r"""^\s*(?P<field>[A-Za-z][A-Za-z0-9_.]*)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>
        "(?P<text>[^"]*)"
      | Guid\(\s*"(?P<guid>[^"]*)"\s*\)
      | DateTime\(\s*(?P<y>\d{4})\s*,\s*(?P<m>\d{1,2})\s*,\s*(?P<d>\d{1,2})\s*\)
      | (?P<bool>true|false)
    )\s*$""",
    re.VERBOSE | re.IGNORECASE,
)

Predicate = Callable[[Document], bool]


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, datetime) and isinstance(expected, date) and not isinstance(expected, datetime):
        actual = actual.date()
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.casefold(), expected.casefold()
    if op == "==":
        return bool(actual == expected)
    if op == "!=":
        return bool(actual != expected)
    try:
        return bool(
            {"<": actual < expected, "<=": actual <= expected, ">": actual > expected, ">=": actual >= expected}[op]
        )
    except TypeError as exc:
        raise QueryError(f"operator {op} does not apply here") from exc


def _clause(text: str, fields: Callable[[str], bool]) -> Predicate:
    match = _CLAUSE.match(text)
    if match is None:
        raise QueryError(f"cannot parse the where clause {text.strip()!r}")
    name, op = match["field"], match["op"]
    if not fields(name):
        raise QueryError(f"No property or field '{name}' exists")
    expected: Any
    if match["text"] is not None:
        expected = match["text"]
    elif match["guid"] is not None:
        expected = match["guid"]
    elif match["y"] is not None:
        expected = date(int(match["y"]), int(match["m"]), int(match["d"]))
    else:
        expected = match["bool"].lower() == "true"
    return lambda doc: _compare(doc.field(name), op, expected)


def parse_where(text: str, fields: Callable[[str], bool]) -> Predicate:
    alternatives = []
    for alternative in re.split(r"\s+OR\s+", text.strip(), flags=re.IGNORECASE):
        parts = [_clause(part, fields) for part in re.split(r"\s+AND\s+", alternative, flags=re.IGNORECASE)]
        alternatives.append(parts)

    def predicate(doc: Document) -> bool:
        return any(all(part(doc) for part in parts) for parts in alternatives)

    return predicate


def _csv(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {part.strip().casefold() for part in value.split(",") if part.strip()}


def select(
    docs: list[Document],
    query: Mapping[str, str],
    if_modified_since: str | None,
    *,
    list_deleted: bool,
) -> list[Document]:
    known = {"type", "status", "reference", "currencycode", "contact.contactid", "contact.name", "date"}
    known.update({"updateddateutc", "invoiceid", "invoicenumber", "creditnoteid", "creditnotenumber"})
    known.add("banktransactionid")
    where = query.get("where")
    predicate = parse_where(where, lambda name: name.casefold() in known) if where else None
    statuses = _csv(query.get("Statuses"))
    ids = _csv(query.get("IDs"))
    numbers = _csv(query.get("InvoiceNumbers"))
    contacts = _csv(query.get("ContactIDs"))
    since = None
    if if_modified_since:
        try:
            since = timefmt.parse_if_modified_since(if_modified_since)
        except (ValueError, TypeError) as exc:
            raise QueryError(f"invalid If-Modified-Since {if_modified_since!r}") from exc
    out = []
    for doc in docs:
        if statuses is not None and doc.status.casefold() not in statuses:
            continue
        if statuses is None and not list_deleted and doc.status == "DELETED":
            continue
        if ids is not None and doc.doc_id.casefold() not in ids:
            continue
        if numbers is not None and (doc.number or "").casefold() not in numbers:
            continue
        if contacts is not None and doc.contact_id.casefold() not in contacts:
            continue
        if since is not None and timefmt.second(doc.updated) < timefmt.second(since):
            continue
        if predicate is not None and not predicate(doc):
            continue
        out.append(doc)
    return order(out, query.get("order"))


def order(docs: list[Document], spec: str | None) -> list[Document]:
    if not spec:
        return sorted(docs, key=lambda d: (d.created, d.doc_id))
    parts = spec.strip().split()
    name = parts[0]
    descending = len(parts) > 1 and parts[1].upper() == "DESC"
    keys: dict[str, Callable[[Document], Any]] = {
        "updateddateutc": lambda d: d.updated,
        "date": lambda d: (d.day, d.created),
        "invoicenumber": lambda d: d.number or "",
        "creditnotenumber": lambda d: d.number or "",
        "invoiceid": lambda d: d.doc_id,
        "creditnoteid": lambda d: d.doc_id,
        "banktransactionid": lambda d: d.doc_id,
    }
    key = keys.get(name.casefold())
    if key is None:
        raise QueryError(f"cannot order by {name!r}")
    return sorted(docs, key=key, reverse=descending)


def paging(query: Mapping[str, str], default_size: int, max_size: int) -> tuple[int, int] | None:
    """``(page, size)`` when the request pages, else None."""
    if "page" not in query:
        return None
    try:
        page = int(query["page"])
        size = int(query.get("pageSize", default_size))
    except ValueError as exc:
        raise QueryError("page and pageSize must be integers") from exc
    if page < 1:
        page = 1
    if size < 1 or size > max_size:
        raise QueryError(f"pageSize must be between 1 and {max_size}")
    return page, size


def pagination(page: int, size: int, count: int) -> dict[str, int]:
    return {
        "page": page,
        "pageSize": size,
        "pageCount": max(1, math.ceil(count / size)) if count else 0,
        "itemCount": count,
    }
