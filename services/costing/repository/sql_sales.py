"""Products, sales and their lines: the statements and the repository methods."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from services.costing.repository._base import _LINE_COLUMNS, _LINE_DEMAND_ORDER, RepositoryPart, SaleKey, _columns

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

# A new sale is inserted with its event's header (a removal's has none), so it is not
# written a second time by UPDATE_SALE_HEADERS, and with its revenue, so that setting its
# cost afterwards is a heap-only update (revenue is indexed for the query service's sort);
# the rows returned are the sales created.
ENSURE_SALES = """
INSERT INTO sales (tenant_id, source, type, external_id, version, doc_number, txn_date, source_created_at, customer,
                   currency, exchange_rate, revenue)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::date[], $8::timestamptz[],
                         $9::text[], $10::text[], $11::numeric[], $12::numeric[])
ON CONFLICT (tenant_id, source, type, external_id) DO NOTHING
RETURNING *"""

SALE_IDS = """
SELECT s.id, s.source, s.type, s.external_id
FROM sales s JOIN unnest($2::text[], $3::text[], $4::text[]) AS k(source, type, external_id)
  ON s.source = k.source AND s.type = k.type AND s.external_id = k.external_id
WHERE s.tenant_id = $1"""

# Why: a sale row serializes edits of that sale; taken in id order, always after the
# locks of its products.
LOCK_SALES_ROWS = "SELECT * FROM sales WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"

SALE_LINE_PRODUCTS = """
SELECT DISTINCT product_id FROM sale_lines WHERE sale_id = ANY($1::bigint[]) AND product_id IS NOT NULL"""

LINES_BY_ID = f"SELECT {_LINE_COLUMNS} FROM sale_lines WHERE id = ANY($1::bigint[])"

POSTED_SALES = "SELECT id FROM sales WHERE id = ANY($1::bigint[]) AND status = 'posted'"

SALE_LINES = f"SELECT {_LINE_COLUMNS} FROM sale_lines WHERE sale_id = ANY($1::bigint[]) ORDER BY sale_id, line_no"

UPDATE_SALE_HEADERS = """
UPDATE sales s SET version = h.version, doc_number = h.doc_number, txn_date = h.txn_date,
       source_created_at = h.source_created_at, customer = h.customer, currency = h.currency,
       exchange_rate = h.exchange_rate, status = h.status, updated_at = now()
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::date[], $5::timestamptz[], $6::text[], $7::text[],
            $8::numeric[], $9::text[])
     AS h(id, version, doc_number, txn_date, source_created_at, customer, currency, exchange_rate, status)
WHERE s.id = h.id AND s.id = ANY($1::bigint[])"""

UPSERT_LINES = """
INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue,
                        revenue, candidate, in_demand, txn_date, source_created_at, source, external_id, sale_type)
SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::numeric[],
                         $9::numeric[], $10::numeric[], $11::boolean[], $12::boolean[], $13::date[],
                         $14::timestamptz[], $15::text[], $16::text[], $17::text[])
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
RETURNING id, sale_id, line_no"""

DELETE_LINES = "DELETE FROM sale_lines WHERE id = ANY($1::bigint[])"

DELETE_ALLOCATIONS_OF_LINES = "DELETE FROM allocations WHERE line_id = ANY($1::bigint[])"

RECORD_VERSIONS = """
INSERT INTO sale_versions (tenant_id, sale_id, version, event_id, event_type, applied, note)
SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::boolean[], $7::text[])"""

# Lines of a newly defined product join the demand.
MAP_PRODUCT_LINES = f"""
UPDATE sale_lines l SET kind = 'inventory',
       in_demand = (s.status = 'posted' AND s.type <> 'credit_memo' AND l.quantity > 0)
FROM sales s
WHERE l.product_id = $1 AND l.candidate AND l.kind = 'unmapped' AND s.id = l.sale_id
RETURNING l.id, l.in_demand, l.sale_id, l.quantity, {_LINE_DEMAND_ORDER}"""


class SalesPart(RepositoryPart):
    """Products, sales, lines, versions."""

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

    async def update_product(
        self, product_id: int, name: str, qbo_item_id: str | None, standard_cost: Decimal | None, version: int
    ) -> None:
        await self.conn.execute(UPDATE_PRODUCT, product_id, name, qbo_item_id, standard_cost, version)

    async def update_product_totals(
        self,
        product_id: int,
        received_qty: Decimal,
        received_value: Decimal,
        wac: Decimal,
        has_basis: bool,
        demand_total: Decimal,
        supply_total: Decimal,
    ) -> None:
        await self.conn.execute(
            UPDATE_PRODUCT_TOTALS, product_id, received_qty, received_value, wac, has_basis, demand_total, supply_total
        )

    async def map_product_lines(self, product_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(MAP_PRODUCT_LINES, product_id)

    # sales ---------------------------------------------------------------------
    async def sale_ids(
        self, headers: dict[SaleKey, tuple[Any, ...]]
    ) -> tuple[dict[SaleKey, int], dict[int, asyncpg.Record]]:
        """Ids of the sales ``(source, type, external_id)``, and the rows of those created
        now, from ``headers``: (version, doc_number, txn_date, source_created_at, customer,
        currency, exchange_rate, revenue) of a sale to create (a removal's all None but
        revenue 0)."""
        wanted = sorted((*key, *header) for key, header in headers.items())
        created = {r["id"]: r for r in await self.conn.fetch(ENSURE_SALES, self.tenant_id, *_columns(wanted, 11))}
        ids = {(r["source"], r["type"], r["external_id"]): i for i, r in created.items()}
        stored = [w[:3] for w in wanted if w[:3] not in ids]
        if stored:
            for r in await self.conn.fetch(SALE_IDS, self.tenant_id, *_columns(stored, 3)):
                ids[(r["source"], r["type"], r["external_id"])] = r["id"]
        return ids, created

    async def sale_line_products(self, sale_ids: Sequence[int]) -> set[int]:
        if not sale_ids:
            return set()
        return {r["product_id"] for r in await self.conn.fetch(SALE_LINE_PRODUCTS, list(sale_ids))}

    async def lock_sales(self, sale_ids: Iterable[int]) -> dict[int, asyncpg.Record]:
        ids = sorted(set(sale_ids))
        return {r["id"]: r for r in await self.conn.fetch(LOCK_SALES_ROWS, ids)} if ids else {}

    async def sale_lines(self, sale_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(SALE_LINES, list(sale_ids)) if sale_ids else []

    async def lines_by_id(self, line_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(LINES_BY_ID, list(line_ids)) if line_ids else []

    async def posted_sales(self, sale_ids: Iterable[int]) -> set[int]:
        ids = list(set(sale_ids))
        return {r["id"] for r in await self.conn.fetch(POSTED_SALES, ids)} if ids else set()

    async def update_sale_headers(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(id, version, doc_number, txn_date, source_created_at, customer, currency, exchange_rate, status)."""
        if rows:
            await self.conn.execute(UPDATE_SALE_HEADERS, *_columns(rows, 9))

    async def upsert_lines(self, rows: Sequence[tuple[Any, ...]]) -> dict[tuple[int, int], int]:
        """Lines as UPSERT_LINES' columns after tenant_id; their ids by (sale_id, line_no)."""
        if not rows:
            return {}
        result = await self.conn.fetch(UPSERT_LINES, self.tenant_id, *_columns(rows, 16))
        return {(r["sale_id"], r["line_no"]): r["id"] for r in result}

    async def delete_lines(self, line_ids: Sequence[int]) -> None:
        if line_ids:
            await self.conn.execute(DELETE_LINES, list(line_ids))

    async def delete_allocations_of(self, line_ids: Sequence[int]) -> None:
        if line_ids:
            await self.conn.execute(DELETE_ALLOCATIONS_OF_LINES, list(line_ids))

    async def record_versions(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(sale_id, version, event_id, event_type, applied, note) per row."""
        if rows:
            await self.conn.execute(RECORD_VERSIONS, self.tenant_id, *_columns(rows, 6))
