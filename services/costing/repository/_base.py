"""What the costing repository's modules share: the column lists, the connection and
tenant an instance is bound to, and the helpers that pass rows as unnest() arrays."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.costing import order
from services.costing.order import DemandKey, SupplyKey
from shared.db import Connection

__all__ = ["DemandKey", "RepositoryPart", "SaleKey", "SupplyKey"]

SaleKey = tuple[str, str, str]  # source, type, external_id

# The demand order's SQL fragments, derived from order.DEMAND_ORDER.
_DEMAND_KEY = order.demand_row()  # a row value, to compare
_DEMAND_ORDER = order.demand_columns()  # a column list, to sort (a row value would be sorted, not read from the index)
_DEMAND_ORDER_DESC = order.demand_columns(desc=True)
_LINE_DEMAND_ORDER = order.demand_columns("l")  # of sale_lines l
_DEMAND_KEY_AT_2 = order.demand_params(2)  # a demand key as parameters $2-$8
_DEMAND_KEY_AT_9 = order.demand_params(9)  # ... and as $9-$15 (a second key)
# The supply order's, from order.SUPPLY_ORDER.
_SUPPLY_KEY = f"({order.supply_columns()})"
_SUPPLY_ORDER = order.supply_columns()
_SUPPLY_ORDER_DESC = order.supply_columns(desc=True)
_LINE_COLUMNS = (
    "id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue, revenue, cost, shortage_qty, "
    "flags, costed, candidate, in_demand, d_start, d_end, txn_date, source_created_at, source, external_id, sale_type"
)
_LOT_COLUMNS = (
    "id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at, version, "
    "s_start, s_end, remaining"
)


class RepositoryPart:
    """Bound to one transaction's connection and its tenant."""

    def __init__(self, conn: Connection, tenant_id: uuid.UUID):
        self.conn = conn
        self.tenant_id = tenant_id


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as ``width`` column lists, for unnest($n::type[], ...); every row has ``width`` values."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _as_text(amounts: Sequence[Decimal | None]) -> list[str | None]:
    """Decimals as their exact text, for a ``$n::text[]::numeric[]`` parameter: a
    backdate sends tens of thousands, and asyncpg's binary numeric encoding of each
    costs several times the text one."""
    return [None if a is None else str(a) for a in amounts]
