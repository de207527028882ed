"""Lots (received and return lots): the statements and the repository methods."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.costing.repository._base import _LOT_COLUMNS, RepositoryPart, _columns

LOT = f"SELECT {_LOT_COLUMNS} FROM lots WHERE product_id = $1 AND lot_number = $2"

LOTS_BY_NUMBER = f"""
SELECT {_LOT_COLUMNS} FROM lots JOIN unnest($1::bigint[], $2::text[]) AS k(pid, number)
  ON product_id = k.pid AND lot_number = k.number"""

UPSERT_LOT = """
INSERT INTO lots (tenant_id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at,
                  version, remaining)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6)
ON CONFLICT (product_id, lot_number) DO UPDATE SET
    quantity = EXCLUDED.quantity, unit_cost = EXCLUDED.unit_cost, received_at = EXCLUDED.received_at,
    version = EXCLUDED.version, return_line_id = EXCLUDED.return_line_id,
    remaining = LEAST(lots.remaining, EXCLUDED.quantity)
RETURNING id"""

UPSERT_RETURN_LOTS = """
INSERT INTO lots (tenant_id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at,
                  remaining)
SELECT $1, r.product_id, r.lot_number, true, r.line_id, r.quantity, r.unit_cost, r.received_at, r.quantity
FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::numeric[], $6::numeric[], $7::timestamptz[])
     AS r(product_id, lot_number, line_id, quantity, unit_cost, received_at)
ON CONFLICT (product_id, lot_number) DO UPDATE SET
    quantity = EXCLUDED.quantity, unit_cost = EXCLUDED.unit_cost, received_at = EXCLUDED.received_at,
    return_line_id = EXCLUDED.return_line_id, remaining = LEAST(lots.remaining, EXCLUDED.quantity)"""

DELETE_LOTS = "DELETE FROM lots WHERE id = ANY($1::bigint[])"

RETURN_LOTS_OF_SALES = f"""
SELECT l.sale_id, {", ".join("r." + c for c in _LOT_COLUMNS.split(", "))}
FROM lots r JOIN sale_lines l ON l.id = r.return_line_id WHERE l.sale_id = ANY($1::bigint[])"""

INSERT_MOVES = """
INSERT INTO stock_moves (tenant_id, product_id, moved_at, kind, quantity, lot_number, sale_id, line_no, event_id)
SELECT $1, m.product_id, m.moved_at, m.kind, m.quantity, m.lot_number, m.sale_id, m.line_no, m.event_id
FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::numeric[], $6::text[], $7::bigint[], $8::int[],
            $9::uuid[]) AS m(product_id, moved_at, kind, quantity, lot_number, sale_id, line_no, event_id)"""

REPRICE_RETURN_LOTS = "UPDATE lots SET unit_cost = $2 WHERE product_id = $1 AND is_return AND unit_cost <> $2"


class LotsPart(RepositoryPart):
    """Lots: read, upsert, delete, reprice return lots."""

    # lots ----------------------------------------------------------------------
    async def lot(self, product_id: int, lot_number: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(LOT, product_id, lot_number)

    async def upsert_lot(
        self,
        product_id: int,
        lot_number: str,
        is_return: bool,
        return_line_id: int | None,
        quantity: Decimal,
        unit_cost: Decimal,
        received_at: datetime,
        version: int | None,
    ) -> int:
        lot_id: int = await self.conn.fetchval(
            UPSERT_LOT,
            self.tenant_id,
            product_id,
            lot_number,
            is_return,
            return_line_id,
            quantity,
            unit_cost,
            received_at,
            version,
        )
        return lot_id

    async def lots_by_number(self, keys: Sequence[tuple[int, str]]) -> list[asyncpg.Record]:
        return await self.conn.fetch(LOTS_BY_NUMBER, *_columns(keys, 2)) if keys else []

    async def upsert_return_lots(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(product_id, lot_number, line_id, quantity, unit_cost, received_at) per return lot."""
        if rows:
            await self.conn.execute(UPSERT_RETURN_LOTS, self.tenant_id, *_columns(rows, 6))

    async def delete_lots(self, lot_ids: Sequence[int]) -> None:
        if lot_ids:
            await self.conn.execute(DELETE_LOTS, list(lot_ids))

    async def return_lots_of_sales(self, sale_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(RETURN_LOTS_OF_SALES, list(sale_ids)) if sale_ids else []

    async def insert_moves(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """The stock ledger's rows (``services.costing.ledger.Move``), in one statement."""
        if rows:
            await self.conn.execute(INSERT_MOVES, self.tenant_id, *_columns(rows, 8))

    async def reprice_return_lots(self, product_id: int, wac: Decimal) -> None:
        await self.conn.execute(REPRICE_RETURN_LOTS, product_id, wac)
