"""SQL of the costing service: every statement it runs, as named constants with
$n parameters. One instance per transaction, bound to a connection and a tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

import asyncpg

# txn_date, source_created_at, source, length of external_id, external_id, sale_type, line_no
DemandKey = tuple[date, datetime, str, int, str, str, int]
SupplyKey = tuple[datetime, str]  # received_at, lot_number

_DEMAND_KEY = "(txn_date, source_created_at, source, external_id_len, external_id, sale_type, line_no)"
# ORDER BY lists the columns (a row value in ORDER BY would be sorted, not read from the index).
_DEMAND_ORDER = "txn_date, source_created_at, source, external_id_len, external_id, sale_type, line_no"
_DEMAND_ORDER_DESC = ", ".join(f"{c} DESC" for c in _DEMAND_ORDER.split(", "))
_LINE_COLUMNS = (
    "id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue, revenue, cost, shortage_qty, "
    "flags, costed, candidate, in_demand, d_start, d_end, txn_date, source_created_at, source, external_id, sale_type"
)
_LOT_COLUMNS = "id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at, version, s_start, s_end, remaining"

RECORD_EVENT = """
INSERT INTO processed_events (event_id, tenant_id, event_type) VALUES ($1, $2, $3)
ON CONFLICT (event_id) DO NOTHING RETURNING event_id"""

ENSURE_PRODUCTS = """
INSERT INTO products (tenant_id, sku) SELECT $1, unnest($2::text[])
ON CONFLICT (tenant_id, sku) DO NOTHING"""

PRODUCT_IDS = "SELECT sku, id FROM products WHERE tenant_id = $1 AND sku = ANY($2::text[])"

# Why: every change to a product's allocations happens under its row lock, taken
# in id order so that transactions naming several products cannot deadlock.
LOCK_PRODUCTS = """
SELECT * FROM products WHERE tenant_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR UPDATE"""

UPDATE_PRODUCT = """
UPDATE products SET defined = true, name = $2, qbo_item_id = $3, standard_cost = $4, version = $5, updated_at = now()
WHERE id = $1"""

UPDATE_PRODUCT_TOTALS = """
UPDATE products SET received_qty = $2, received_value = $3, wac = $4, has_cost_basis = $5,
       demand_total = $6, supply_total = $7, updated_at = now()
WHERE id = $1"""

ENSURE_SALE = """
INSERT INTO sales (tenant_id, source, type, external_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id, source, type, external_id) DO NOTHING"""

SALE_ID = "SELECT id FROM sales WHERE tenant_id = $1 AND source = $2 AND type = $3 AND external_id = $4"

# Why: the sale row serializes edits of one sale; always taken after its products' locks.
LOCK_SALE = "SELECT * FROM sales WHERE id = $1 FOR UPDATE"

SALE_LINE_PRODUCTS = "SELECT DISTINCT product_id FROM sale_lines WHERE sale_id = $1 AND product_id IS NOT NULL"

LINES_BY_ID = f"SELECT {_LINE_COLUMNS} FROM sale_lines WHERE id = ANY($1::bigint[])"

POSTED_SALES = "SELECT id FROM sales WHERE id = ANY($1::bigint[]) AND status = 'posted'"

SALE_LINES = f"SELECT {_LINE_COLUMNS} FROM sale_lines WHERE sale_id = $1 ORDER BY line_no"

UPDATE_SALE_HEADER = """
UPDATE sales SET version = $2, doc_number = $3, txn_date = $4, source_created_at = $5, customer = $6,
       currency = $7, exchange_rate = $8, status = $9, updated_at = now()
WHERE id = $1"""

UPDATE_SALE_STATUS = "UPDATE sales SET status = $2, updated_at = now() WHERE id = $1"

UPSERT_LINE = """
INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue,
                        revenue, candidate, in_demand, txn_date, source_created_at, source, external_id, sale_type)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (sale_id, line_no) DO UPDATE SET
    sku = EXCLUDED.sku, product_id = EXCLUDED.product_id, description = EXCLUDED.description, kind = EXCLUDED.kind,
    quantity = EXCLUDED.quantity, gross_revenue = EXCLUDED.gross_revenue, revenue = EXCLUDED.revenue,
    candidate = EXCLUDED.candidate, in_demand = EXCLUDED.in_demand, txn_date = EXCLUDED.txn_date,
    source_created_at = EXCLUDED.source_created_at, source = EXCLUDED.source, external_id = EXCLUDED.external_id,
    sale_type = EXCLUDED.sale_type,
    d_start = CASE WHEN EXCLUDED.in_demand THEN sale_lines.d_start END,
    d_end = CASE WHEN EXCLUDED.in_demand THEN sale_lines.d_end END,
    shortage_qty = CASE WHEN EXCLUDED.in_demand THEN sale_lines.shortage_qty ELSE 0 END,
    shortage_cost = CASE WHEN EXCLUDED.in_demand THEN sale_lines.shortage_cost ELSE 0 END
RETURNING id"""

DELETE_LINES = "DELETE FROM sale_lines WHERE sale_id = $1 AND NOT (line_no = ANY($2::int[]))"

DELETE_ALLOCATIONS_OF_LINES = "DELETE FROM allocations WHERE line_id = ANY($1::bigint[])"

RECORD_VERSION = """
INSERT INTO sale_versions (tenant_id, sale_id, version, event_id, event_type, applied, note)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""

# Lines of a newly defined product join the demand.
MAP_PRODUCT_LINES = f"""
UPDATE sale_lines l SET kind = 'inventory',
       in_demand = (s.status = 'posted' AND s.type <> 'credit_memo' AND l.quantity > 0)
FROM sales s
WHERE l.product_id = $1 AND l.candidate AND l.kind = 'unmapped' AND s.id = l.sale_id
RETURNING l.id, l.in_demand, {', '.join('l.' + c for c in _DEMAND_ORDER.split(', '))}"""

LOT = f"SELECT {_LOT_COLUMNS} FROM lots WHERE product_id = $1 AND lot_number = $2"

UPSERT_LOT = """
INSERT INTO lots (tenant_id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at, version, remaining)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6)
ON CONFLICT (product_id, lot_number) DO UPDATE SET
    quantity = EXCLUDED.quantity, unit_cost = EXCLUDED.unit_cost, received_at = EXCLUDED.received_at,
    version = EXCLUDED.version, return_line_id = EXCLUDED.return_line_id,
    remaining = LEAST(lots.remaining, EXCLUDED.quantity)
RETURNING id"""

DELETE_LOT = "DELETE FROM lots WHERE id = $1"

RETURN_LOTS_OF_SALE = f"""
SELECT {_LOT_COLUMNS} FROM lots WHERE return_line_id IN (SELECT id FROM sale_lines WHERE sale_id = $1)"""

REPRICE_RETURN_LOTS = "UPDATE lots SET unit_cost = $2 WHERE product_id = $1 AND is_return AND unit_cost <> $2"

# --- the FIFO tail -----------------------------------------------------------------

DEMAND_PREDECESSOR_END = f"""
SELECT d_end FROM sale_lines WHERE product_id = $1 AND in_demand AND {_DEMAND_KEY} < ($2, $3, $4, $5, $6, $7, $8)
ORDER BY {_DEMAND_ORDER_DESC} LIMIT 1"""

TAIL_LINES_FROM_KEY = f"""
SELECT {_LINE_COLUMNS} FROM sale_lines
WHERE product_id = $1 AND in_demand AND ({_DEMAND_KEY} >= ($2, $3, $4, $5, $6, $7, $8) OR d_end > $9)
ORDER BY {_DEMAND_ORDER}"""

TAIL_LINES_FROM_POSITION = f"""
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE product_id = $1 AND in_demand AND d_end > $2
ORDER BY {_DEMAND_ORDER}"""

SUPPLY_PREDECESSOR_END = """
SELECT s_end FROM lots WHERE product_id = $1 AND (received_at, lot_number) < ($2, $3)
ORDER BY received_at DESC, lot_number DESC LIMIT 1"""

TAIL_LOTS_FROM_KEY = f"""
SELECT {_LOT_COLUMNS} FROM lots
WHERE product_id = $1 AND ((received_at, lot_number) >= ($2, $3) OR (s_end > $4 AND s_start < $5))
ORDER BY received_at, lot_number"""

TAIL_LOTS_FROM_POSITION = f"""
SELECT {_LOT_COLUMNS} FROM lots WHERE product_id = $1 AND s_end > $2 AND s_start < $3
ORDER BY received_at, lot_number"""

ALLOCATIONS_OF_LINES = """
SELECT a.line_id, a.lot_id, a.quantity, lot.unit_cost FROM allocations a JOIN lots lot ON lot.id = a.lot_id
WHERE a.line_id = ANY($1::bigint[])"""

DELETE_ALLOCATION_PAIRS = """
DELETE FROM allocations a USING unnest($1::bigint[], $2::bigint[]) AS d(line_id, lot_id)
WHERE a.line_id = d.line_id AND a.lot_id = d.lot_id"""

UPSERT_ALLOCATIONS = """
INSERT INTO allocations (tenant_id, line_id, lot_id, quantity)
SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::numeric[])
ON CONFLICT (line_id, lot_id) DO UPDATE SET quantity = EXCLUDED.quantity"""

WRITE_LINES = """
UPDATE sale_lines l SET d_start = CASE WHEN u.moved THEN u.d_start ELSE l.d_start END,
       d_end = CASE WHEN u.moved THEN u.d_end ELSE l.d_end END,
       cost = u.cost, shortage_qty = u.shortage_qty, shortage_cost = u.shortage_cost,
       flags = string_to_array(u.flags, ','), costed = true
FROM unnest($1::bigint[], $2::boolean[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[],
            $8::text[]) AS u(id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags)
WHERE l.id = u.id AND l.id = ANY($1::bigint[])"""

WRITE_LOTS = """
UPDATE lots SET s_start = u.s_start, s_end = u.s_end, remaining = u.remaining
FROM unnest($1::bigint[], $2::numeric[], $3::numeric[], $4::numeric[]) AS u(id, s_start, s_end, remaining)
WHERE lots.id = u.id AND lots.id = ANY($1::bigint[])"""

# Lines whose cost follows the WAC outside a re-laid tail: shortages, consumers of
# return lots (priced at WAC), and credit memo lines (valued at WAC).
WAC_DEPENDENT_LINES = f"""
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE product_id = $1 AND shortage_qty > 0
UNION
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE product_id = $1 AND sale_type = 'credit_memo' AND kind = 'inventory'
UNION
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE id IN (
    SELECT a.line_id FROM lots r JOIN allocations a ON a.lot_id = r.id WHERE r.product_id = $1 AND r.is_return)"""

INSERT_REVISIONS = """
INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, event_id)
SELECT $1, *, $6, $7 FROM unnest($2::bigint[], $3::int[], $4::numeric[], $5::numeric[])"""

# Why: sale totals are rewritten by every transaction that re-costs one of its
# lines; the rows are locked in id order first so those transactions cannot
# deadlock, and the sums are read after the lock so they see committed lines.
LOCK_SALES = "SELECT id FROM sales WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"

REFRESH_SALE_TOTALS = """
UPDATE sales s SET revenue = t.revenue, cost = t.cost, has_shortage = t.has_shortage, updated_at = now()
FROM (SELECT s2.id, coalesce(sum(l.revenue), 0) AS revenue, coalesce(sum(l.cost), 0) AS cost,
             coalesce(bool_or(l.shortage_qty > 0), false) AS has_shortage
      FROM sales s2 LEFT JOIN sale_lines l ON l.sale_id = s2.id AND l.sale_id = ANY($1::bigint[])
      WHERE s2.id = ANY($1::bigint[]) GROUP BY s2.id) t
WHERE s.id = t.id AND s.id = ANY($1::bigint[])
  AND (s.revenue, s.cost, s.has_shortage) IS DISTINCT FROM (t.revenue, t.cost, t.has_shortage)"""

RESET_TENANT = [
    "DELETE FROM cost_revisions WHERE tenant_id = $1",
    "DELETE FROM sale_versions WHERE tenant_id = $1",
    "DELETE FROM allocations WHERE tenant_id = $1",
    "DELETE FROM lots WHERE tenant_id = $1",
    "DELETE FROM sale_lines WHERE tenant_id = $1",
    "DELETE FROM sales WHERE tenant_id = $1",
    "DELETE FROM products WHERE tenant_id = $1",
    "DELETE FROM processed_events WHERE tenant_id = $1",
]


class CostingRepository:
    def __init__(self, conn: asyncpg.Connection, tenant_id: uuid.UUID):
        self.conn = conn
        self.tenant_id = tenant_id

    async def record_event(self, event_id: uuid.UUID, event_type: str) -> bool:
        return await self.conn.fetchval(RECORD_EVENT, event_id, self.tenant_id, event_type) is not None

    # products ------------------------------------------------------------------
    async def product_ids(self, skus: Iterable[str]) -> dict[str, int]:
        skus = sorted(set(skus))
        if not skus:
            return {}
        await self.conn.execute(ENSURE_PRODUCTS, self.tenant_id, skus)
        return {r["sku"]: r["id"] for r in await self.conn.fetch(PRODUCT_IDS, self.tenant_id, skus)}

    async def lock_products(self, ids: Iterable[int]) -> dict[int, asyncpg.Record]:
        rows = await self.conn.fetch(LOCK_PRODUCTS, self.tenant_id, sorted(set(ids)))
        return {r["id"]: r for r in rows}

    async def update_product(self, product_id: int, name: str, qbo_item_id: str | None,
                             standard_cost: Decimal | None, version: int) -> None:
        await self.conn.execute(UPDATE_PRODUCT, product_id, name, qbo_item_id, standard_cost, version)

    async def update_product_totals(self, product_id: int, received_qty: Decimal, received_value: Decimal, wac: Decimal,
                                    has_basis: bool, demand_total: Decimal, supply_total: Decimal) -> None:
        await self.conn.execute(UPDATE_PRODUCT_TOTALS, product_id, received_qty, received_value, wac, has_basis,
                                demand_total, supply_total)

    async def map_product_lines(self, product_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(MAP_PRODUCT_LINES, product_id)

    # sales ---------------------------------------------------------------------
    async def sale_id(self, source: str, sale_type: str, external_id: str) -> int:
        await self.conn.execute(ENSURE_SALE, self.tenant_id, source, sale_type, external_id)
        return await self.conn.fetchval(SALE_ID, self.tenant_id, source, sale_type, external_id)

    async def sale_line_products(self, sale_id: int) -> set[int]:
        return {r["product_id"] for r in await self.conn.fetch(SALE_LINE_PRODUCTS, sale_id)}

    async def lock_sale(self, sale_id: int) -> asyncpg.Record:
        return await self.conn.fetchrow(LOCK_SALE, sale_id)

    async def sale_lines(self, sale_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(SALE_LINES, sale_id)

    async def lines_by_id(self, line_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(LINES_BY_ID, list(line_ids)) if line_ids else []

    async def posted_sales(self, sale_ids: Iterable[int]) -> set[int]:
        ids = list(set(sale_ids))
        return {r["id"] for r in await self.conn.fetch(POSTED_SALES, ids)} if ids else set()

    async def update_sale_header(self, sale_id: int, *args) -> None:
        await self.conn.execute(UPDATE_SALE_HEADER, sale_id, *args)

    async def update_sale_status(self, sale_id: int, status: str) -> None:
        await self.conn.execute(UPDATE_SALE_STATUS, sale_id, status)

    async def upsert_line(self, sale_id: int, *args) -> int:
        return await self.conn.fetchval(UPSERT_LINE, self.tenant_id, sale_id, *args)

    async def delete_lines_except(self, sale_id: int, keep_line_nos: Sequence[int]) -> None:
        await self.conn.execute(DELETE_LINES, sale_id, list(keep_line_nos))

    async def delete_allocations_of(self, line_ids: Sequence[int]) -> None:
        if line_ids:
            await self.conn.execute(DELETE_ALLOCATIONS_OF_LINES, list(line_ids))

    async def record_version(self, sale_id: int, version: int | None, event_id: uuid.UUID, event_type: str,
                             applied: bool, note: str | None = None) -> None:
        await self.conn.execute(RECORD_VERSION, self.tenant_id, sale_id, version, event_id, event_type, applied, note)

    # lots ----------------------------------------------------------------------
    async def lot(self, product_id: int, lot_number: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(LOT, product_id, lot_number)

    async def upsert_lot(self, product_id: int, lot_number: str, is_return: bool, return_line_id: int | None,
                         quantity: Decimal, unit_cost: Decimal, received_at: datetime, version: int | None) -> int:
        return await self.conn.fetchval(UPSERT_LOT, self.tenant_id, product_id, lot_number, is_return, return_line_id,
                                        quantity, unit_cost, received_at, version)

    async def delete_lot(self, lot_id: int) -> None:
        await self.conn.execute(DELETE_LOT, lot_id)

    async def return_lots_of_sale(self, sale_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(RETURN_LOTS_OF_SALE, sale_id)

    async def reprice_return_lots(self, product_id: int, wac: Decimal) -> None:
        await self.conn.execute(REPRICE_RETURN_LOTS, product_id, wac)

    # FIFO tail -----------------------------------------------------------------
    async def demand_predecessor_end(self, product_id: int, key: DemandKey) -> Decimal | None:
        return await self.conn.fetchval(DEMAND_PREDECESSOR_END, product_id, *key)

    async def tail_lines(self, product_id: int, key: DemandKey | None, position: Decimal) -> list[asyncpg.Record]:
        if key is None:
            return await self.conn.fetch(TAIL_LINES_FROM_POSITION, product_id, position)
        return await self.conn.fetch(TAIL_LINES_FROM_KEY, product_id, *key, position)

    async def supply_predecessor_end(self, product_id: int, key: SupplyKey) -> Decimal | None:
        return await self.conn.fetchval(SUPPLY_PREDECESSOR_END, product_id, *key)

    async def tail_lots(self, product_id: int, key: SupplyKey | None, lo: Decimal, hi: Decimal) -> list[asyncpg.Record]:
        if key is None:
            return await self.conn.fetch(TAIL_LOTS_FROM_POSITION, product_id, lo, hi)
        return await self.conn.fetch(TAIL_LOTS_FROM_KEY, product_id, *key, lo, hi)

    async def allocations_of(self, line_ids: Sequence[int]) -> list[asyncpg.Record]:
        if not line_ids:
            return []
        return await self.conn.fetch(ALLOCATIONS_OF_LINES, list(line_ids))

    async def delete_allocation_pairs(self, pairs: Sequence[tuple[int, int]]) -> None:
        if pairs:
            await self.conn.execute(DELETE_ALLOCATION_PAIRS, [p[0] for p in pairs], [p[1] for p in pairs])

    async def upsert_allocations(self, rows: Sequence[tuple[int, int, Decimal]]) -> None:
        if rows:
            await self.conn.execute(UPSERT_ALLOCATIONS, self.tenant_id, [r[0] for r in rows], [r[1] for r in rows],
                                    [r[2] for r in rows])

    async def write_lines(self, rows: Sequence[tuple]) -> None:
        """(id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags) per line."""
        if rows:
            await self.conn.execute(WRITE_LINES, *map(list, zip(*rows)))

    async def write_lots(self, rows: Sequence[tuple[int, Decimal, Decimal, Decimal]]) -> None:
        if rows:
            await self.conn.execute(WRITE_LOTS, *map(list, zip(*rows)))

    async def wac_dependent_lines(self, product_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(WAC_DEPENDENT_LINES, product_id)

    async def insert_revisions(self, rows: Sequence[tuple[int, int, Decimal, Decimal]], cause: str,
                               event_id: uuid.UUID) -> None:
        if rows:
            await self.conn.execute(INSERT_REVISIONS, self.tenant_id, *map(list, zip(*rows)), cause, event_id)

    async def refresh_sale_totals(self, sale_ids: Iterable[int]) -> None:
        ids = sorted(set(sale_ids))
        if ids:
            await self.conn.execute(LOCK_SALES, ids)
            await self.conn.execute(REFRESH_SALE_TOTALS, ids)

    async def reset_tenant(self) -> None:
        for statement in RESET_TENANT:
            await self.conn.execute(statement, self.tenant_id)
