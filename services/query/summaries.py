"""Totals read from the rollups (shared/migrations/0003_query.sql and
0007_query_rollups.sql, folded by services/query/rollups.py): the summary of the
sales list and the product margins. Every statement adds the base tables and the
unfolded deltas in one snapshot, so it is exact at any time.

A date range is read from the coarsest grain that covers it exactly: whole months
from the month tables, the days at its two edges from the day tables (``split``), the
unfolded deltas (which have a day) by the range itself. The list summary without any
date filter reads the all-time table; with a customer substring or a sku (and no
date or margin filter) the per-customer or per-sku table. Any other combination
sums the matching sales themselves (views/sales_list.py), which is exact too, just slower.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

ONE_DAY = timedelta(days=1)


# --- a date range as whole months and edge days ------------------------------------------


@dataclass(frozen=True)
class Span:
    """An inclusive date range (None: unbounded on that side) as the inclusive range of
    whole months it covers (first days of month, None: unbounded), or None if it covers
    none, and the inclusive day ranges left at its edges."""

    months: tuple[date | None, date | None] | None
    days: tuple[tuple[date | None, date | None], ...]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def split(first: date | None, last: date | None) -> Span:
    """``first``..``last`` as whole months plus edge days. date.min and date.max mean
    unbounded (asyncpg sends them as -infinity and infinity), as they do in the list's
    date filter."""
    first = None if first == date.min else first
    last = None if last == date.max else last
    whole = Span(None, ((first, last),))
    m_first: date | None = None
    m_last: date | None = None
    if first is not None:
        if first.day == 1:
            m_first = first
        elif (first.year, first.month) == (date.max.year, 12):
            return whole
        else:
            m_first = _month_end(first) + ONE_DAY
    if last is not None:
        if last == _month_end(last):
            m_last = _month_start(last)
        elif (last.year, last.month) == (date.min.year, 1):
            return whole
        else:
            m_last = _month_start(_month_start(last) - ONE_DAY)
    if m_first is not None and m_last is not None and m_first > m_last:
        return whole
    days: list[tuple[date | None, date | None]] = []
    # (a month bound is set only where its side of the range is)
    if m_first is not None and first is not None and first < m_first:
        days.append((first, m_first - ONE_DAY))
    if m_last is not None and last is not None and last > _month_end(m_last):
        days.append((_month_end(m_last) + ONE_DAY, last))
    return Span((m_first, m_last), tuple(days))


# --- statements --------------------------------------------------------------------------


class Params:
    """The $n parameters of one statement, numbered as they are added."""

    def __init__(self, *values: Any):
        self.values = list(values)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _range(column: str, params: Params, first: date | None, last: date | None) -> list[str]:
    """``column`` within first..last (inclusive), never -infinity (an undated sale is
    in no date range)."""
    clauses = [f"{column} > '-infinity'::date"]
    if first is not None:
        clauses.append(f"{column} >= {params(first)}::date")
    if last is not None:
        clauses.append(f"{column} <= {params(last)}::date")
    return clauses


@dataclass(frozen=True)
class Part:
    table: str
    where: tuple[str, ...]


def _parts_for_range(
    month_table: str, day_table: str, delta_table: str, params: Params, first: date | None, last: date | None
) -> list[Part]:
    span = split(first, last)
    parts = []
    if span.months is not None:
        parts.append(Part(month_table, tuple(_range("t.month", params, *span.months))))
    parts += [Part(day_table, tuple(_range("t.day", params, a, b))) for a, b in span.days]
    parts.append(Part(delta_table, tuple(_range("t.day", params, first, last))))
    return parts


def _union(columns: str, parts: list[Part], common: list[str]) -> str:
    return "\n    UNION ALL\n    ".join(
        f"SELECT {columns} FROM {p.table} t WHERE " + " AND ".join(["t.tenant_id = $1", *p.where, *common])
        for p in parts
    )


# The sale dimensions of the rollups, and the list filters on them.
DIMENSION_FILTERS = {
    "status": "t.status = {}::text",
    "type": "t.type = {}::text",
    "source": "t.source = {}::text",
    "shortage": "t.has_shortage = {}::boolean",
}
DATE_FILTERS = ("from", "to")
#: rollup of each keyed filter: base table and its condition, delta table and its condition
KEYED = {
    # the names matching a substring, then their rows by primary key
    "customer": (
        "customer_totals",
        "t.customer IN (SELECT n.customer FROM customer_names n WHERE n.tenant_id = $1 AND n.customer ILIKE {}::text)",
        "customer_totals_delta",
        "t.customer ILIKE {}::text",
    ),
    "sku": ("sku_totals", "t.sku = {}::text", "sku_totals_delta", "t.sku = {}::text"),
}

SALES_SUMMARY = """
SELECT coalesce(sum(t.sales), 0)::bigint AS count, coalesce(sum(t.revenue), 0) AS revenue,
       coalesce(sum(t.cost), 0) AS cost
FROM (
    {union}
) t"""


def sales_summary(params: Params, filters: dict[str, Any]) -> str | None:
    """The summary statement from a rollup, its arguments added to ``params`` ($1 is the
    tenant), or None when no rollup covers this combination of filters."""
    names = set(filters)
    others = names - set(DIMENSION_FILTERS)
    if not others:
        parts = [Part("sales_totals_all", ()), Part("sales_totals_delta", ())]
    elif others <= set(DATE_FILTERS):
        parts = _parts_for_range(
            "sales_totals_month", "sales_totals", "sales_totals_delta", params, filters.get("from"), filters.get("to")
        )
    elif len(others) == 1 and (key := others.pop()) in KEYED:
        base, base_condition, delta, delta_condition = KEYED[key]
        value = params(filters[key])
        parts = [Part(base, (base_condition.format(value),)), Part(delta, (delta_condition.format(value),))]
    else:
        return None
    common = [DIMENSION_FILTERS[name].format(params(filters[name])) for name in DIMENSION_FILTERS if name in names]
    return SALES_SUMMARY.format(union=_union("t.sales, t.revenue, t.cost", parts, common))


PRODUCT_MARGINS = """
SELECT p.sku, p.name, m.quantity_sold, m.quantity_returned, m.revenue, m.cost, m.shortage_quantity
FROM (
    SELECT t.product_id, sum(t.quantity_sold) AS quantity_sold, sum(t.quantity_returned) AS quantity_returned,
           sum(t.revenue) AS revenue, sum(t.cost) AS cost, sum(t.shortage_qty) AS shortage_quantity
    FROM (
    {union}
    ) t
    GROUP BY t.product_id
    HAVING sum(t.lines) > 0
) m
JOIN products p ON p.id = m.product_id"""


def product_margins(tenant_id: uuid.UUID, first: date | None, last: date | None) -> tuple[str, list[Any]]:
    """Inventory lines of posted sales dated first..last, per product: one row per
    product and month, plus the edge days and the unfolded deltas."""
    params = Params(tenant_id)
    parts = _parts_for_range("product_totals_month", "product_totals", "product_totals_delta", params, first, last)
    columns = "t.product_id, t.lines, t.quantity_sold, t.quantity_returned, t.revenue, t.cost, t.shortage_qty"
    return PRODUCT_MARGINS.format(union=_union(columns, parts, [])), params.values
