"""The subset of QBO's query language the simulator understands (docs/quickbooks-api.md §5.4):

    SELECT * [, field]… | COUNT(*) FROM <Entity> [WHERE <cond> [AND <cond>]…]
        [ORDERBY <field> [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS m]

``<cond>`` = ``field op value`` with ``= != < > <= >=``, ``field IN (v, …)`` or ``field LIKE '…%'``.
Keywords are case-insensitive; ``ORDER BY`` is accepted too. ``MetaData.*Time`` fields compare as
date-times at full internal precision; ``Id`` numerically; ``*Ref`` fields by their ``value``.
STARTPOSITION is 1-based (default 1); MAXRESULTS defaults to 100 and is silently capped at 1000
([C3]: docs/quickbooks-api.md gives 1000 as the maximum; a bigger request gets 1000 rows). Deleted entities are
never returned; inactive Items and Customers only when the query names ``Active`` (as QBO does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from tools.qbo_sim import timefmt
from tools.qbo_sim.store import Company, Record

QUERYABLE = {
    "invoice": "Invoice",
    "salesreceipt": "SalesReceipt",
    "creditmemo": "CreditMemo",
    "item": "Item",
    "customer": "Customer",
}
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),*])
                        |(?P<word>[A-Za-z_][\w.]*)|(?P<num>-?\d+(?:\.\d+)?))""",
    re.VERBOSE,
)


class QueryError(Exception):
    def __init__(self, message: str, parse: bool = True):
        super().__init__(message)
        self.parse = parse


@dataclass
class Condition:
    field: str
    op: str
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order_by: str | None = None
    descending: bool = False
    start: int = 1
    max_results: int = 100


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f'Encountered " {text[pos : pos + 10]!r} " at column {pos + 1}')
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise QueryError("Encountered <EOF>")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        _, text = self.take()
        if text.upper() != value:
            raise QueryError(f'Encountered " {text} " expected {value}')

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("\\'", "'").replace("''", "'")
        if kind == "num":
            return Decimal(text)
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise QueryError(f'Encountered " {text} " expected a value')

    def parse(self) -> Query:
        self.expect("SELECT")
        count = False
        if self.keyword("COUNT"):
            self.expect("(")
            self.expect("*")
            self.expect(")")
            count = True
        else:
            self.expect("*")
            # ``SELECT *, Sku FROM Item`` (python-quickbooks ≥ 0.9.12, docs/quickbooks-api.md §5.4): extra fields after
            # ``*`` are accepted; whole entities come back anyway.
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take()
                kind, name = self.take()
                if kind != "word":
                    raise QueryError(f'Encountered " {name} " expected a field')
        self.expect("FROM")
        kind, name = self.take()
        if kind != "word":
            raise QueryError(f'Encountered " {name} " expected an entity')
        entity = QUERYABLE.get(name.lower())
        if entity is None:
            raise QueryError(f"{name} is not supported by the simulator", parse=False)
        query = Query(entity, count=count)
        if self.keyword("WHERE"):
            query.where.append(self.condition())
            while self.keyword("AND"):
                query.where.append(self.condition())
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self.keyword("BY")):
            kind, name = self.take()
            query.order_by = name
            if self.keyword("DESC"):
                query.descending = True
            else:
                self.keyword("ASC")
        while self.peek():
            if self.keyword("STARTPOSITION"):
                query.start = int(self.value())
            elif self.keyword("MAXRESULTS"):
                query.max_results = int(self.value())
            else:
                raise QueryError(f'Encountered " {self.peek()[1]} "')  # type: ignore[index]
        if query.start < 1 or query.max_results < 1:
            raise QueryError("STARTPOSITION and MAXRESULTS must be positive", parse=False)
        return query

    def condition(self) -> Condition:
        kind, name = self.take()
        if kind != "word":
            raise QueryError(f'Encountered " {name} " expected a field')
        if self.keyword("IN"):
            self.expect("(")
            values = [self.value()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take()
                values.append(self.value())
            self.expect(")")
            return Condition(name, "IN", values)
        if self.keyword("LIKE"):
            return Condition(name, "LIKE", [self.value()])
        kind, op = self.take()
        if kind != "op":
            raise QueryError(f'Encountered " {op} " expected an operator')
        return Condition(name, "!=" if op == "<>" else op, [self.value()])


def parse(text: str) -> Query:
    return _Parser(text).parse()


def _field(record: Record, rendered: dict[str, Any], path: str) -> Any:
    lowered = path.lower()
    if lowered == "metadata.lastupdatedtime":
        return record.updated_time
    if lowered == "metadata.createtime":
        return record.create_time
    if lowered == "id":
        return int(record.id)
    value: Any = rendered
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        match = next((key for key in value if key.lower() == part.lower()), None)
        value = value.get(match) if match else None
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    return value


def _coerce(sample: Any, value: Any, tz: timezone) -> Any:
    if isinstance(sample, datetime):
        return timefmt.parse_datetime(str(value), tz)
    if isinstance(sample, bool):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if isinstance(sample, (int, Decimal)):
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise QueryError(f"{value!r} is not a number", parse=False) from exc
    if isinstance(sample, str):
        return str(value).casefold()
    return value


def _matches(actual: Any, cond: Condition, tz: timezone) -> bool:
    if actual is None:
        return False
    if isinstance(actual, str):
        actual = actual.casefold()
    values = [_coerce(actual, value, tz) for value in cond.values]
    if cond.op == "IN":
        return actual in values
    if cond.op == "LIKE":
        pattern = "".join(".*" if ch == "%" else re.escape(ch) for ch in str(values[0]))
        return re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
    other = values[0]
    try:
        result: bool = {
            "=": actual == other,
            "!=": actual != other,
            "<": actual < other,
            ">": actual > other,
            "<=": actual <= other,
            ">=": actual >= other,
        }[cond.op]
    except TypeError as exc:
        raise QueryError(f"cannot compare {cond.field}", parse=False) from exc
    return result


def execute(company: Company, query: Query, max_cap: int) -> dict[str, Any]:
    tz = company.tz
    rows: list[tuple[Record, dict[str, Any]]] = []
    names_active = any(cond.field.lower() == "active" for cond in query.where)
    for record in company.live(query.entity):
        rendered = record.render(tz)
        if query.entity in ("Item", "Customer") and not names_active and not rendered.get("Active", True):
            continue
        try:
            ok = all(_matches(_field(record, rendered, cond.field), cond, tz) for cond in query.where)
        except ValueError as exc:
            raise QueryError(str(exc), parse=False) from exc
        if ok:
            rows.append((record, rendered))
    if query.count:
        return {"totalCount": len(rows)}
    if query.order_by:
        order_by = query.order_by

        def key(row: tuple[Record, dict[str, Any]]) -> tuple[bool, Any]:
            value = _field(row[0], row[1], order_by)
            return (value is None, value if not isinstance(value, str) else value.casefold())

        try:
            rows.sort(key=key, reverse=query.descending)
        except TypeError as exc:
            raise QueryError(f"cannot order by {query.order_by}", parse=False) from exc
    else:
        rows.sort(key=lambda row: int(row[0].id))
    limit = min(query.max_results, max_cap)
    page = [rendered for _, rendered in rows[query.start - 1 : query.start - 1 + limit]]
    if not page:
        return {}
    return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}
