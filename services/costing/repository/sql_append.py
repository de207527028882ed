"""New sales appended at the end of their products' demand axes (the rebuild's groups,
``services/costing/append.py``): what it reads of the axes' ends and writes in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from services.costing.repository._base import (
    _DEMAND_ORDER,
    _DEMAND_ORDER_DESC,
    _LOT_COLUMNS,
    _SUPPLY_ORDER,
    RepositoryPart,
    SaleKey,
    _as_text,
    _columns,
)
from services.costing.repository.sql_sales import SALE_IDS

# The last line of each product's demand axis (its key and where it ends); none: no row.
DEMAND_ENDS = f"""
SELECT p.id AS product_id, last.*
FROM unnest($1::bigint[]) AS p(id)
CROSS JOIN LATERAL (SELECT {_DEMAND_ORDER}, d_end FROM sale_lines
                    WHERE product_id = p.id AND in_demand ORDER BY {_DEMAND_ORDER_DESC} LIMIT 1) last"""

# The lots of each product overlapping [lo, hi) on its supply axis, in supply order.
LOTS_IN_WINDOWS = f"""
SELECT {_LOT_COLUMNS} FROM unnest($1::bigint[], $2::numeric[], $3::numeric[]) AS w(pid, lo, hi)
CROSS JOIN LATERAL (SELECT {_LOT_COLUMNS} FROM lots WHERE product_id = w.pid AND s_end > w.lo AND s_start < w.hi
                    ORDER BY {_SUPPLY_ORDER}) lot"""

# New sales with their totals already summed (so no UPDATE follows); the rows created.
INSERT_SALES = """
INSERT INTO sales (tenant_id, source, type, external_id, version, doc_number, txn_date, source_created_at, customer,
                   currency, exchange_rate, revenue, cost, has_shortage)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::date[], $8::timestamptz[],
                         $9::text[], $10::text[], $11::numeric[], $12::text[]::numeric[], $13::text[]::numeric[],
                         $14::boolean[])
ON CONFLICT (tenant_id, source, type, external_id) DO NOTHING
RETURNING id, source, type, external_id"""

# New lines, costed and placed: one insert, no UPDATE after it (so each line's triggers run once).
INSERT_COSTED_LINES = """
INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue,
                        revenue, candidate, in_demand, txn_date, source_created_at, source, external_id, sale_type,
                        d_start, d_end, cost, shortage_qty, shortage_cost, flags, costed)
SELECT $1, u.sale_id, u.line_no, u.sku, u.product_id, u.description, u.kind, u.quantity, u.gross_revenue, u.revenue,
       u.candidate, u.in_demand, u.txn_date, u.source_created_at, u.source, u.external_id, u.sale_type,
       u.d_start, u.d_end, u.cost, u.shortage_qty, u.shortage_cost, string_to_array(u.flags, ','), true
FROM unnest($2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[]::numeric[],
            $9::text[]::numeric[], $10::text[]::numeric[], $11::boolean[], $12::boolean[], $13::date[],
            $14::timestamptz[], $15::text[], $16::text[], $17::text[], $18::text[]::numeric[],
            $19::text[]::numeric[], $20::text[]::numeric[], $21::text[]::numeric[], $22::text[]::numeric[],
            $23::text[])
     AS u(sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue, revenue, candidate,
          in_demand, txn_date, source_created_at, source, external_id, sale_type, d_start, d_end, cost,
          shortage_qty, shortage_cost, flags)
RETURNING id, sale_id, line_no"""

# Only the demand end moves (the other totals are checked unchanged before).
UPDATE_DEMAND_TOTALS = """
UPDATE products p SET demand_total = u.demand_total, updated_at = now()
FROM unnest($1::bigint[], $2::text[]::numeric[]) AS u(id, demand_total)
WHERE p.id = u.id AND p.id = ANY($1::bigint[])"""

#: INSERT_COSTED_LINES' columns after tenant_id; the amounts (7-9, 17-21) are Decimals or None.
_LINE_AMOUNTS = (6, 7, 8, 16, 17, 18, 19, 20)


class AppendPart(RepositoryPart):
    """The ends of products' axes, and new sales and lines written costed."""

    async def existing_sales(self, keys: Sequence[SaleKey]) -> set[SaleKey]:
        """Which of these sales exist."""
        if not keys:
            return set()
        rows = await self.conn.fetch(SALE_IDS, self.tenant_id, *_columns(keys, 3))
        return {(r["source"], r["type"], r["external_id"]) for r in rows}

    async def demand_ends(self, product_ids: Sequence[int]) -> dict[int, asyncpg.Record]:
        """Per product with a line in demand: its last line's demand key columns and d_end."""
        if not product_ids:
            return {}
        return {r["product_id"]: r for r in await self.conn.fetch(DEMAND_ENDS, list(product_ids))}

    async def lots_in_windows(self, windows: Sequence[tuple[int, Decimal, Decimal]]) -> list[asyncpg.Record]:
        """(product_id, lo, hi) per product: its lots overlapping [lo, hi), in supply order."""
        return await self.conn.fetch(LOTS_IN_WINDOWS, *_columns(windows, 3)) if windows else []

    async def insert_sales(self, rows: Sequence[tuple[Any, ...]]) -> list[asyncpg.Record]:
        """(source, type, external_id, version, doc_number, txn_date, source_created_at, customer,
        currency, exchange_rate, revenue, cost, has_shortage) per new sale; the rows created."""
        if not rows:
            return []
        cols = _columns(rows, 13)
        cols[10], cols[11] = _as_text(cols[10]), _as_text(cols[11])
        return await self.conn.fetch(INSERT_SALES, self.tenant_id, *cols)

    async def insert_costed_lines(self, rows: Sequence[tuple[Any, ...]]) -> dict[tuple[int, int], int]:
        """INSERT_COSTED_LINES' columns after tenant_id per line; their ids by (sale_id, line_no)."""
        if not rows:
            return {}
        cols = _columns(rows, 22)
        for i in _LINE_AMOUNTS:
            cols[i] = _as_text(cols[i])
        result = await self.conn.fetch(INSERT_COSTED_LINES, self.tenant_id, *cols)
        return {(r["sale_id"], r["line_no"]): r["id"] for r in result}

    async def update_demand_totals(self, rows: Sequence[tuple[int, Decimal]]) -> None:
        if rows:
            ids, totals = _columns(rows, 2)
            await self.conn.execute(UPDATE_DEMAND_TOTALS, ids, _as_text(totals))
