"""The FIFO tail: what the tail re-cost reads of a product's axes and writes back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from services.costing.repository._base import (
    _DEMAND_KEY,
    _DEMAND_KEY_AT_2,
    _DEMAND_KEY_AT_9,
    _DEMAND_ORDER,
    _DEMAND_ORDER_DESC,
    _LINE_COLUMNS,
    _LINE_DEMAND_ORDER,
    _LOT_COLUMNS,
    _SUPPLY_KEY,
    _SUPPLY_ORDER,
    _SUPPLY_ORDER_DESC,
    DemandKey,
    RepositoryPart,
    SupplyKey,
    _as_text,
    _columns,
)
from services.costing.repository.sql_recost_in_db import RECOST_TAIL_IN_DB

# --- the FIFO tail -----------------------------------------------------------------

DEMAND_PREDECESSOR_END = f"""
SELECT d_end FROM sale_lines WHERE product_id = $1 AND in_demand AND {_DEMAND_KEY} < {_DEMAND_KEY_AT_2}
ORDER BY {_DEMAND_ORDER_DESC} LIMIT 1"""

# What re-costing a line needs of it (a backdate reads thousands of them): whether it
# moves (it comes at or after the changed demand key, $9-$15; NULLs: none moves) and
# its allocations, as arrays in lot id order.
TAIL_LINES = f"""
SELECT l.id, l.sale_id, l.line_no, l.kind, l.quantity, l.cost, l.shortage_qty, l.flags, l.costed, l.d_start, l.d_end,
       ({_LINE_DEMAND_ORDER}) >= {_DEMAND_KEY_AT_9}
           IS TRUE AS moves,
       a.lot_ids, a.quantities
FROM sale_lines l
LEFT JOIN LATERAL (SELECT array_agg(a.lot_id ORDER BY a.lot_id) AS lot_ids,
                          array_agg(a.quantity ORDER BY a.lot_id) AS quantities
                   FROM allocations a WHERE a.line_id = l.id) a ON true
WHERE l.product_id = $1 AND l.in_demand
  AND ({_LINE_DEMAND_ORDER}) >= {_DEMAND_KEY_AT_2}
ORDER BY {_LINE_DEMAND_ORDER}
LIMIT $16"""

# The first line (in demand order) that ends after a position: the one consuming the
# lot that covers the position, or else the first short line past it. Positions grow
# with the demand order, so every line after it ends after the position too. (No index
# on d_end: positions change on every re-cost, and an index on them would make each of
# those updates write every index of sale_lines instead of a heap-only tuple.)
FIRST_LINE_ENDING_AFTER = f"""
(SELECT {_DEMAND_ORDER} FROM sale_lines l JOIN allocations a ON a.line_id = l.id
 WHERE a.lot_id = (SELECT id FROM lots WHERE product_id = $1 AND s_end > $2 AND s_end > s_start
                   ORDER BY s_end LIMIT 1)
   AND l.in_demand AND l.d_end > $2
 ORDER BY {_DEMAND_ORDER} LIMIT 1)
UNION ALL
(SELECT {_DEMAND_ORDER} FROM sale_lines
 WHERE product_id = $1 AND shortage_qty > 0 AND in_demand AND d_end > $2
 ORDER BY {_DEMAND_ORDER} LIMIT 1)"""

SUPPLY_PREDECESSOR_END = f"""
SELECT s_end FROM lots WHERE product_id = $1 AND {_SUPPLY_KEY} < ($2, $3)
ORDER BY {_SUPPLY_ORDER_DESC} LIMIT 1"""

TAIL_LOTS_FROM_KEY = f"""
SELECT {_LOT_COLUMNS} FROM lots
WHERE product_id = $1 AND ({_SUPPLY_KEY} >= ($2, $3) OR (s_end > $4 AND s_start < $5))
ORDER BY {_SUPPLY_ORDER}"""

TAIL_LOTS_FROM_POSITION = f"""
SELECT {_LOT_COLUMNS} FROM lots WHERE product_id = $1 AND s_end > $2 AND s_start < $3
ORDER BY {_SUPPLY_ORDER}"""

# The first line (in demand order) consuming each of these lots.
FIRST_CONSUMERS = f"""
SELECT DISTINCT ON (a.lot_id) a.lot_id, l.product_id, {_LINE_DEMAND_ORDER}
FROM allocations a JOIN sale_lines l ON l.id = a.line_id
WHERE a.lot_id = ANY($1::bigint[]) AND l.in_demand
ORDER BY a.lot_id, {_LINE_DEMAND_ORDER}"""

ALLOCATIONS_OF_LINES = """
SELECT a.line_id, a.lot_id, a.quantity, lot.unit_cost FROM allocations a JOIN lots lot ON lot.id = a.lot_id
WHERE a.line_id = ANY($1::bigint[])"""

# (The line ids again as an index condition: joined with the pairs alone, the planner
# can only scan the allocations of every tenant.)
DELETE_ALLOCATION_PAIRS = """
DELETE FROM allocations a USING unnest($1::bigint[], $2::bigint[]) AS d(line_id, lot_id)
WHERE a.line_id = d.line_id AND a.lot_id = d.lot_id AND a.line_id = ANY($1::bigint[])"""

# The bulk of a backdate's writes, one statement (PostgreSQL refuses COPY into a table with
# row-level security); references checked per statement (0010).
INSERT_ALLOCATIONS = """
INSERT INTO allocations (tenant_id, line_id, lot_id, quantity)
SELECT $1, u.line_id, u.lot_id, u.quantity
FROM unnest($2::bigint[], $3::bigint[], $4::text[]::numeric[]) AS u(line_id, lot_id, quantity)"""

WRITE_LINES = """
UPDATE sale_lines l SET d_start = CASE WHEN u.moved THEN u.d_start ELSE l.d_start END,
       d_end = CASE WHEN u.moved THEN u.d_end ELSE l.d_end END,
       cost = u.cost, shortage_qty = u.shortage_qty, shortage_cost = u.shortage_cost,
       flags = string_to_array(u.flags, ','), costed = true
FROM unnest($1::bigint[], $2::boolean[], $3::text[]::numeric[], $4::text[]::numeric[], $5::text[]::numeric[],
            $6::text[]::numeric[], $7::text[]::numeric[], $8::text[])
     AS u(id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags)
WHERE l.id = u.id AND l.id = ANY($1::bigint[])"""

WRITE_LOTS = """
UPDATE lots SET s_start = u.s_start, s_end = u.s_end, remaining = u.remaining
FROM unnest($1::bigint[], $2::numeric[], $3::numeric[], $4::numeric[]) AS u(id, s_start, s_end, remaining)
WHERE lots.id = u.id AND lots.id = ANY($1::bigint[])"""

# A demand tail's quantity from a key on: where the re-costed demand ends.
DEMAND_QUANTITY_FROM = f"""
SELECT coalesce(sum(quantity), 0) FROM sale_lines
WHERE product_id = $1 AND in_demand AND {_DEMAND_KEY} >= {_DEMAND_KEY_AT_2}"""

# Lines whose cost follows the WAC outside a re-costed tail: shortages, consumers of
# return lots (priced at WAC), and credit memo lines (valued at WAC).
WAC_DEPENDENT_LINES = f"""
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE product_id = $1 AND shortage_qty > 0
UNION
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE product_id = $1 AND sale_type = 'credit_memo' AND kind = 'inventory'
UNION
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE id IN (
    SELECT a.line_id FROM lots r JOIN allocations a ON a.lot_id = r.id WHERE r.product_id = $1 AND r.is_return)"""


class TailPart(RepositoryPart):
    """The FIFO tail of a product: positions, lines, lots, allocations."""

    # FIFO tail -----------------------------------------------------------------
    async def demand_predecessor_end(self, product_id: int, key: DemandKey) -> Decimal | None:
        end: Decimal | None = await self.conn.fetchval(DEMAND_PREDECESSOR_END, product_id, *key)
        return end

    async def tail_lines(
        self, product_id: int, key: DemandKey, moved_from: DemandKey | None, limit: int | None = None
    ) -> list[asyncpg.Record]:
        """The in-demand lines of a product from ``key`` on, in demand order (the first
        ``limit``); ``moves``: at or after ``moved_from``; ``lot_ids``, ``quantities``: its allocations."""
        return await self.conn.fetch(TAIL_LINES, product_id, *key, *(moved_from or (None,) * len(key)), limit)

    async def demand_quantity_from(self, product_id: int, key: DemandKey) -> Decimal:
        quantity: Decimal = await self.conn.fetchval(DEMAND_QUANTITY_FROM, product_id, *key)
        return quantity

    async def recost_tail_in_db(
        self,
        product_id: int,
        key: DemandKey,
        moved_from: DemandKey | None,
        moved_start: Decimal | None,
        supply_end: Decimal,
        wac: Decimal,
        has_basis: bool,
        span: tuple[Decimal, Decimal],
        cause: tuple[str, uuid.UUID],
        resummed: Iterable[int],
    ) -> list[int] | None:
        """Re-cost, allocate, price and write the tail from ``key`` and the totals of its
        sales but ``resummed`` (RECOST_TAIL_IN_DB); the tail's line ids."""
        line_ids: list[int] | None = await self.conn.fetchval(
            RECOST_TAIL_IN_DB,
            product_id,
            *key,
            *(moved_from or (None,) * len(key)),
            moved_start,
            supply_end,
            wac,
            has_basis,
            *span,
            self.tenant_id,
            *cause,
            sorted(resummed),
        )
        return line_ids

    async def first_line_ending_after(self, product_id: int, position: Decimal) -> DemandKey | None:
        rows = await self.conn.fetch(FIRST_LINE_ENDING_AFTER, product_id, position)
        return min((tuple(r) for r in rows), default=None)

    async def supply_predecessor_end(self, product_id: int, key: SupplyKey) -> Decimal | None:
        end: Decimal | None = await self.conn.fetchval(SUPPLY_PREDECESSOR_END, product_id, *key)
        return end

    async def tail_lots(self, product_id: int, key: SupplyKey | None, lo: Decimal, hi: Decimal) -> list[asyncpg.Record]:
        if key is None:
            return await self.conn.fetch(TAIL_LOTS_FROM_POSITION, product_id, lo, hi)
        return await self.conn.fetch(TAIL_LOTS_FROM_KEY, product_id, *key, lo, hi)

    async def first_consumers(self, lot_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(FIRST_CONSUMERS, list(lot_ids)) if lot_ids else []

    async def allocations_of(self, line_ids: Sequence[int]) -> list[asyncpg.Record]:
        if not line_ids:
            return []
        return await self.conn.fetch(ALLOCATIONS_OF_LINES, list(line_ids))

    async def delete_allocation_pairs(self, pairs: Sequence[tuple[int, int]]) -> None:
        if pairs:
            await self.conn.execute(DELETE_ALLOCATION_PAIRS, [p[0] for p in pairs], [p[1] for p in pairs])

    async def insert_allocations(self, rows: Sequence[tuple[int, int, Decimal]]) -> None:
        """(line_id, lot_id, quantity) per allocation; none of these pairs may exist."""
        if rows:
            line_ids, lot_ids, quantities = _columns(rows, 3)
            await self.conn.execute(INSERT_ALLOCATIONS, self.tenant_id, line_ids, lot_ids, _as_text(quantities))

    async def write_lines(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags) per line."""
        if rows:
            ids, moved, *amounts, flags = _columns(rows, 8)
            await self.conn.execute(WRITE_LINES, ids, moved, *map(_as_text, amounts), flags)

    async def write_lots(self, rows: Sequence[tuple[int, Decimal, Decimal, Decimal]]) -> None:
        if rows:
            await self.conn.execute(WRITE_LOTS, *_columns(rows, 4))

    async def wac_dependent_lines(self, product_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(WAC_DEPENDENT_LINES, product_id)
