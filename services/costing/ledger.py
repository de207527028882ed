"""The stock ledger (``stock_moves``, 0024_stock_moves.sql): what each applied fact did to
a product's quantity on hand, written in the transaction that applies it.

Every move is a difference against the state applied before, so per product the sum of
the moves is received + returned - sold (lines in demand), whatever order the facts
arrived in; only the rows themselves depend on the order. Pure: the handlers call these
with what they already hold and write the rows in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

#: (product_id, moved_at, kind, quantity, lot_number, sale_id, line_no, event_id)
Move = tuple[int, datetime, str, Decimal, str | None, int | None, int | None, uuid.UUID | None]


def day_start(day: date | None) -> datetime:
    """A sale's moves are dated at the start (UTC) of its date (now, for a sale without one)."""
    return datetime.combine(day, time(0), tzinfo=UTC) if day is not None else datetime.now(UTC)


def lot_move(
    product_id: int,
    lot_number: str,
    old_quantity: Decimal | None,
    quantity: Decimal,
    received_at: datetime,
    event_id: uuid.UUID,
) -> Move:
    """A received lot: RECEIPT of its quantity, or CORRECTION by the difference (0 when only
    its cost or date changed: the correction is still on record)."""
    if old_quantity is None:
        return (product_id, received_at, "RECEIPT", quantity, lot_number, None, None, event_id)
    return (product_id, received_at, "CORRECTION", quantity - old_quantity, lot_number, None, None, event_id)


#: A sale line's demand as applied: (product_id, quantity, date), or None when not in demand.
Demand = tuple[int, Decimal, date | None] | None
#: A credit memo line's return lot: (product_id, lot_number, quantity, received_at), or None.
Return = tuple[int, str, Decimal, datetime] | None


def sale_moves(
    sale_id: int,
    demand: Mapping[int, tuple[Demand, Demand]],
    returns: Mapping[int, tuple[Return, Return]],
    event_id: uuid.UUID,
) -> list[Move]:
    """One sale's moves, per line (old, new): an unchanged line moves nothing; else the old
    version comes back (SALE_REVERSAL) and the new one goes out (SALE) or, for a credit
    memo's return lot, comes in (RETURN; undone by a SALE_REVERSAL)."""
    moves: list[Move] = []
    for line_no, (old, new) in sorted(demand.items()):
        if old == new:
            continue
        if old is not None:
            moves.append((old[0], day_start(old[2]), "SALE_REVERSAL", old[1], None, sale_id, line_no, event_id))
        if new is not None:
            moves.append((new[0], day_start(new[2]), "SALE", -new[1], None, sale_id, line_no, event_id))
    for line_no, (old_lot, new_lot) in sorted(returns.items()):
        if old_lot == new_lot:
            continue
        if old_lot is not None:
            pid, number, qty, at = old_lot
            moves.append((pid, at, "SALE_REVERSAL", -qty, number, sale_id, line_no, event_id))
        if new_lot is not None:
            pid, number, qty, at = new_lot
            moves.append((pid, at, "RETURN", qty, number, sale_id, line_no, event_id))
    return moves


def mapped_moves(rows: Iterable[Any], product_id: int, event_id: uuid.UUID) -> list[Move]:
    """Lines of a product just defined that entered demand (they were unmapped): SALE each."""
    return [
        (product_id, day_start(r["txn_date"]), "SALE", -r["quantity"], None, r["sale_id"], r["line_no"], event_id)
        for r in rows
        if r["in_demand"]
    ]
