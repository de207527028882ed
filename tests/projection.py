"""Reads one tenant's costing state from the database into the reference model's
``State`` shape, so the two can be compared with ``==``."""

from __future__ import annotations

from tests.reference_model import LineState, LotState, SaleState, State

SALES = """
SELECT source, type, external_id, status, version, revenue, cost, has_shortage FROM sales WHERE tenant_id = $1"""
LINES = """
SELECT s.source, s.type, s.external_id, l.id, l.line_no, l.kind, l.quantity, l.revenue, l.cost, l.shortage_qty, l.flags
FROM sale_lines l JOIN sales s ON s.id = l.sale_id WHERE l.tenant_id = $1"""
ALLOCATIONS = """
SELECT a.line_id, lot.lot_number, a.quantity
FROM allocations a JOIN lots lot ON lot.id = a.lot_id WHERE a.tenant_id = $1"""
LOTS = """
SELECT p.sku, lot.lot_number, lot.quantity, lot.unit_cost, lot.remaining
FROM lots lot JOIN products p ON p.id = lot.product_id WHERE lot.tenant_id = $1"""


async def project(pool, tenant_id) -> State:
    async with pool.acquire() as conn:
        allocations: dict[int, dict] = {}
        for a in await conn.fetch(ALLOCATIONS, tenant_id):
            allocations.setdefault(a["line_id"], {})[a["lot_number"]] = a["quantity"]
        return State(
            sales={
                (r["source"], r["type"], r["external_id"]): SaleState(
                    r["status"], r["version"], r["revenue"], r["cost"], r["has_shortage"]
                )
                for r in await conn.fetch(SALES, tenant_id)
            },
            lines={
                (r["source"], r["type"], r["external_id"], r["line_no"]): LineState(
                    r["kind"],
                    r["quantity"],
                    r["revenue"],
                    r["cost"],
                    r["shortage_qty"],
                    allocations.get(r["id"], {}),
                    frozenset(r["flags"]),
                )
                for r in await conn.fetch(LINES, tenant_id)
            },
            lots={
                (r["sku"], r["lot_number"]): LotState(r["quantity"], r["unit_cost"], r["remaining"])
                for r in await conn.fetch(LOTS, tenant_id)
            },
        )
