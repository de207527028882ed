"""The costing auditor (services/costing/audit.py): its checks hold on a costed history,
and a row that breaks one is named."""

from __future__ import annotations

from tests.conftest import new_tenant
from tests.histories import history
from tests.invariants import assert_invariants, violations

LINE_KEYS = "I12 lines carry their sale's date and keys"


async def test_the_auditor_names_a_line_dated_apart_from_its_sale(pool, costing) -> None:
    tenant_id = await new_tenant(pool)
    for event in history(tenant_id, seed=41, sales=15):
        await costing.apply(event)
    assert_invariants(await violations(pool, tenant_id))
    line = await pool.fetchrow(
        "SELECT id, sale_id, line_no FROM sale_lines WHERE tenant_id = $1 AND txn_date IS NOT NULL ORDER BY id LIMIT 1",
        tenant_id,
    )
    await pool.execute("UPDATE sale_lines SET txn_date = txn_date + 1 WHERE id = $1", line["id"])
    found = await violations(pool, tenant_id)
    assert found[LINE_KEYS] == [{"sale_id": line["sale_id"], "line_no": line["line_no"]}]
    assert all(rows == [] for name, rows in found.items() if name != LINE_KEYS)
