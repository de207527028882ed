"""The costing auditor: checks the invariants I1–I3 of docs/reliability.md §7.2 (and that
no allocation joins two tenants, I8; that each line carries its sale's date and keys, I12) in SQL,
on a live system, without blocking it.

    python -m services.costing.audit --tenant <uuid> [--tenant <uuid> ...]
    python -m services.costing.audit                 # every tenant

Each tenant is read in one read-only REPEATABLE READ transaction (one snapshot, no row
locks: the costing engine's writers are never waited for and never wait), scoped to that
tenant by row-level security. ``--tenant`` connects with ``DATABASE_URL`` (the service
role: it can see nothing but the tenant it audits); "every tenant" needs the list of
tenants, so it connects with ``DATABASE_OWNER_URL``, and still scopes each tenant's
transaction. A ``lock_timeout`` and a ``statement_timeout`` bound what a slow check could
hold. Exit status: 0 when every check holds, 1 naming each violation (tenant, check, row),
2 when the audit could not run.

The tests check the same SQL (tests/invariants.py) after every fault scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from typing import Any

import asyncpg

from shared.db import Connection, set_tenant
from shared.settings import Settings

#: I1: 0 ≤ remaining ≤ quantity and remaining = quantity − allocated, for every lot.
LOT_BALANCE = """
SELECT lot.lot_number, lot.quantity, lot.remaining, coalesce(sum(a.quantity), 0) AS allocated
FROM lots lot LEFT JOIN allocations a ON a.lot_id = lot.id
WHERE lot.tenant_id = $1
GROUP BY lot.id
HAVING lot.remaining < 0 OR lot.remaining > lot.quantity
    OR lot.quantity - lot.remaining <> coalesce(sum(a.quantity), 0)"""

#: I2: each line's quantity and cost = its allocations (at the lots' unit costs) + shortage.
LINE_BALANCE = """
SELECT l.id, l.quantity, l.cost, l.shortage_qty, l.shortage_cost,
       coalesce(sum(a.quantity), 0) AS allocated, coalesce(sum(a.quantity * lot.unit_cost), 0) AS allocated_cost
FROM sale_lines l LEFT JOIN allocations a ON a.line_id = l.id LEFT JOIN lots lot ON lot.id = a.lot_id
WHERE l.tenant_id = $1 AND l.in_demand
GROUP BY l.id
HAVING coalesce(sum(a.quantity), 0) + l.shortage_qty <> l.quantity
    OR coalesce(sum(a.quantity * lot.unit_cost), 0) + l.shortage_cost <> l.cost"""

#: I2: per product, Σ lot quantity = Σ allocated + Σ remaining.
PRODUCT_CONSERVATION = """
SELECT p.sku, sum(lot.quantity) AS received, sum(lot.remaining) AS remaining,
       coalesce(sum(a.allocated), 0) AS allocated
FROM products p JOIN lots lot ON lot.product_id = p.id
LEFT JOIN (SELECT lot_id, sum(quantity) AS allocated FROM allocations GROUP BY lot_id) a ON a.lot_id = lot.id
WHERE p.tenant_id = $1
GROUP BY p.id
HAVING sum(lot.quantity) <> coalesce(sum(a.allocated), 0) + sum(lot.remaining)"""

#: I3: a line out of the demand (its sale voided, deleted, or the line edited away) holds no allocation.
ORPHAN_ALLOCATIONS = """
SELECT a.line_id FROM allocations a JOIN sale_lines l ON l.id = a.line_id
WHERE a.tenant_id = $1 AND NOT l.in_demand"""

#: I3: a sale that is not posted (voided, deleted) keeps no allocation.
REMOVED_SALE_ALLOCATIONS = """
SELECT s.type, s.external_id, s.status, a.line_id FROM allocations a
JOIN sale_lines l ON l.id = a.line_id JOIN sales s ON s.id = l.sale_id
WHERE a.tenant_id = $1 AND s.status <> 'posted'"""

#: I8: no allocation joins a lot and a line of different tenants.
CROSS_TENANT = """
SELECT a.line_id FROM allocations a JOIN sale_lines l ON l.id = a.line_id JOIN lots lot ON lot.id = a.lot_id
WHERE a.tenant_id = $1 AND (l.tenant_id <> lot.tenant_id OR a.tenant_id <> l.tenant_id)"""

#: I12: every line carries its sale's date and keys (the demand order and the sales list by
#: sku read them from the line: 0030_sku_day_index.sql).
LINE_SALE_KEYS = """
SELECT l.sale_id, l.line_no FROM sale_lines l JOIN sales s ON s.id = l.sale_id
WHERE l.tenant_id = $1
  AND (l.txn_date, l.source_created_at, l.source, l.external_id, l.sale_type)
      IS DISTINCT FROM (s.txn_date, s.source_created_at, s.source, s.external_id, s.type)"""

CHECKS = {
    "I1 lot balance": LOT_BALANCE,
    "I2 line balance": LINE_BALANCE,
    "I2 product conservation": PRODUCT_CONSERVATION,
    "I3 allocations of lines outside demand": ORPHAN_ALLOCATIONS,
    "I3 allocations of sales not posted": REMOVED_SALE_ALLOCATIONS,
    "I8 cross-tenant allocations": CROSS_TENANT,
    "I12 lines carry their sale's date and keys": LINE_SALE_KEYS,
}

#: Session settings of the auditor's connection: it never waits long for a lock, nor runs long.
SESSION = {"lock_timeout": "2s", "statement_timeout": "300s", "application_name": "partsemble-audit"}


async def audit_tenant(conn: Connection, tenant_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Rows breaking an invariant, by check name (empty lists when all hold), read from one
    snapshot of the tenant's data: a read-only REPEATABLE READ transaction under its scope."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await set_tenant(conn, tenant_id)
        return {name: [dict(r) for r in await conn.fetch(sql, tenant_id)] for name, sql in CHECKS.items()}


async def audit(dsn: str, tenants: list[uuid.UUID] | None) -> dict[uuid.UUID, dict[str, list[dict[str, Any]]]]:
    """The violations of each tenant (every tenant when ``tenants`` is None)."""
    conn = await asyncpg.connect(dsn, server_settings=SESSION)
    try:
        if tenants is None:
            tenants = [r["id"] for r in await conn.fetch("SELECT id FROM tenants ORDER BY id")]
        return {tenant: await audit_tenant(conn, tenant) for tenant in tenants}
    finally:
        await conn.close()


def report(found: dict[uuid.UUID, dict[str, list[dict[str, Any]]]]) -> int:
    """Print each violation (one JSON line each) and a summary; the exit status."""
    violations = 0
    for tenant, checks in found.items():
        for check, rows in checks.items():
            for row in rows:
                violations += 1
                print(json.dumps({"violation": check, "tenant": str(tenant), "row": row}, default=str))
    print(json.dumps({"audited_tenants": len(found), "checks": len(CHECKS), "violations": violations}))
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.costing.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", action="append", type=uuid.UUID, help="a tenant to audit (repeatable)")
    args = parser.parse_args(argv)
    settings = Settings()
    dsn = settings.database_url if args.tenant else settings.database_owner_url
    try:
        found = asyncio.run(audit(dsn, args.tenant))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(json.dumps({"error": f"the audit could not run: {type(exc).__name__}: {exc}"}), file=sys.stderr)
        sys.exit(2)
    sys.exit(report(found))


if __name__ == "__main__":
    main()
