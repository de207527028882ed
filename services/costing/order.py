"""The orders of the FIFO axes (docs/costing.md §2), written once; no I/O.

Demand: a product's lines in ``DEMAND_ORDER``, the columns of ``sale_lines`` (and of
its index ``sale_lines_demand_order``, migration 0006). External ids compare length
first (``external_id_len``, a generated column), then as text, so numeric QuickBooks
ids sort numerically ("101" before "1000"); the sale type breaks the last tie between
an invoice and a sales receipt with the same id. Supply: lots in ``SUPPLY_ORDER``.

The Python key of a row (``demand_key``) and the SQL fragments that compare and sort
by it (``demand_columns``, ``demand_params``) are all derived from these tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Protocol

#: txn_date, source_created_at, source, length of external_id, external_id, sale_type, line_no
DEMAND_ORDER: tuple[str, ...] = (
    "txn_date",
    "source_created_at",
    "source",
    "external_id_len",
    "external_id",
    "sale_type",
    "line_no",
)
SUPPLY_ORDER: tuple[str, ...] = ("received_at", "lot_number")

DemandKey = tuple[date, datetime, str, int, str, str, int]
SupplyKey = tuple[datetime, str]


class Row(Protocol):
    """A row read from the database: an ``asyncpg.Record`` or any mapping of its columns."""

    def __getitem__(self, key: str, /) -> Any: ...


#: Columns of the order that a row does not carry but are computed from it (as the
#: database computes its generated column).
_DERIVED: dict[str, Callable[[Row], Any]] = {"external_id_len": lambda row: len(row["external_id"])}


def demand_key(row: Row) -> DemandKey:
    """A line's place in the demand order, from a row (or mapping) with its fields."""
    return tuple(_DERIVED[c](row) if c in _DERIVED else row[c] for c in DEMAND_ORDER)


def demand_key_of(
    txn_date: date, source_created_at: datetime, source: str, external_id: str, sale_type: str, line_no: int
) -> DemandKey:
    return demand_key(
        {
            "txn_date": txn_date,
            "source_created_at": source_created_at,
            "source": source,
            "external_id": external_id,
            "sale_type": sale_type,
            "line_no": line_no,
        }
    )


def supply_key(row: Row) -> SupplyKey:
    return tuple(row[c] for c in SUPPLY_ORDER)


# --- SQL fragments (for the repository's statements) ------------------------------


def demand_columns(alias: str = "", desc: bool = False) -> str:
    """The demand order as a column list: ``l.txn_date, l.source_created_at, …``
    (``desc``: each column descending). ORDER BY takes the list, not a row value (a row
    value would be sorted, not read from the index)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}{' DESC' if desc else ''}" for c in DEMAND_ORDER)


def demand_row(alias: str = "") -> str:
    """The demand order as a row value, for comparisons: ``(l.txn_date, …, l.line_no)``."""
    return f"({demand_columns(alias)})"


def demand_params(first: int) -> str:
    """A demand key as parameters ``($first, …)``, one per column of the order."""
    return "(" + ", ".join(f"${first + i}" for i in range(len(DEMAND_ORDER))) + ")"


def supply_columns(desc: bool = False) -> str:
    return ", ".join(f"{c}{' DESC' if desc else ''}" for c in SUPPLY_ORDER)
