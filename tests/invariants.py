"""SQL checks of the costing invariants (docs/reliability.md I1, I2), for any tenant."""

from __future__ import annotations

LOT_BALANCE = """
SELECT lot.lot_number, lot.quantity, lot.remaining, coalesce(sum(a.quantity), 0) AS allocated
FROM lots lot LEFT JOIN allocations a ON a.lot_id = lot.id
WHERE lot.tenant_id = $1
GROUP BY lot.id
HAVING lot.remaining < 0 OR lot.remaining > lot.quantity
    OR lot.quantity - lot.remaining <> coalesce(sum(a.quantity), 0)"""

LINE_BALANCE = """
SELECT l.id, l.quantity, l.cost, l.shortage_qty, l.shortage_cost,
       coalesce(sum(a.quantity), 0) AS allocated, coalesce(sum(a.quantity * lot.unit_cost), 0) AS allocated_cost
FROM sale_lines l LEFT JOIN allocations a ON a.line_id = l.id LEFT JOIN lots lot ON lot.id = a.lot_id
WHERE l.tenant_id = $1 AND l.in_demand
GROUP BY l.id
HAVING coalesce(sum(a.quantity), 0) + l.shortage_qty <> l.quantity
    OR coalesce(sum(a.quantity * lot.unit_cost), 0) + l.shortage_cost <> l.cost"""

ORPHAN_ALLOCATIONS = """
SELECT a.line_id FROM allocations a JOIN sale_lines l ON l.id = a.line_id
WHERE a.tenant_id = $1 AND NOT l.in_demand"""

CROSS_TENANT = """
SELECT a.line_id FROM allocations a JOIN sale_lines l ON l.id = a.line_id JOIN lots lot ON lot.id = a.lot_id
WHERE l.tenant_id <> lot.tenant_id OR a.tenant_id <> l.tenant_id"""


async def violations(pool, tenant_id) -> dict[str, list]:
    """Rows breaking an invariant, by check name; empty lists when all hold."""
    async with pool.acquire() as conn:
        return {
            "lot balance": [dict(r) for r in await conn.fetch(LOT_BALANCE, tenant_id)],
            "line balance": [dict(r) for r in await conn.fetch(LINE_BALANCE, tenant_id)],
            "allocations of lines outside demand": [dict(r) for r in await conn.fetch(ORPHAN_ALLOCATIONS, tenant_id)],
            "cross-tenant allocations": [dict(r) for r in await conn.fetch(CROSS_TENANT)],
        }


def assert_invariants(found: dict[str, list]) -> None:
    broken = {name: rows for name, rows in found.items() if rows}
    assert not broken, f"invariants broken: {broken}"
