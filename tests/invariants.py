"""SQL checks of the costing invariants (docs/reliability.md I1–I3, I8) for any tenant: the
production auditor's checks (services/costing/audit.py), run by the tests after each scenario."""

from __future__ import annotations

from services.costing.audit import audit_tenant


async def violations(pool, tenant_id) -> dict[str, list]:
    """Rows breaking an invariant, by check name; empty lists when all hold."""
    async with pool.acquire() as conn:
        return await audit_tenant(conn, tenant_id)


def assert_invariants(found: dict[str, list]) -> None:
    broken = {name: rows for name, rows in found.items() if rows}
    assert not broken, f"invariants broken: {broken}"
