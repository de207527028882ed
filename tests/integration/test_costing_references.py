"""The references of allocations and cost revisions, checked per statement by
0010_bulk_reference_checks.sql instead of per-row foreign keys: a row naming what
does not exist (or another tenant's) is refused, and deleting a line, lot or sale
takes what refers to it along."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.conftest import new_tenant
from tests.histories import history


@pytest.fixture
async def costed(pool, costing, tenant_id):
    """A tenant with a costed history: some allocations and cost revisions."""
    for event in history(tenant_id, seed=3, sales=24):
        await costing.apply(event)
    assert await pool.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1", tenant_id) > 0
    return tenant_id


async def test_allocation_naming_a_missing_line_or_lot_is_refused(pool, costed):
    line_id, lot_id = await pool.fetchrow(
        "SELECT line_id, lot_id FROM allocations WHERE tenant_id = $1 LIMIT 1", costed)
    missing = await pool.fetchval("SELECT max(id) + 1000 FROM sale_lines")
    for line, lot in ((missing, lot_id), (line_id, missing + 10**6)):
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="names no line or lot of its tenant"):
            await pool.execute("INSERT INTO allocations (tenant_id, line_id, lot_id, quantity) "
                               "SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::numeric[])",
                               costed, [line], [lot], [1])


async def test_allocation_or_revision_of_another_tenant_is_refused(pool, costed):
    other = await new_tenant(pool, "other")
    line_id = await pool.fetchval("SELECT line_id FROM allocations WHERE tenant_id = $1 LIMIT 1", costed)
    free_lot = await pool.fetchval("SELECT id FROM lots WHERE tenant_id = $1 AND id NOT IN "
                                   "(SELECT lot_id FROM allocations WHERE line_id = $2) LIMIT 1", costed, line_id)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute("INSERT INTO allocations (tenant_id, line_id, lot_id, quantity) VALUES ($1, $2, $3, 5)",
                           other, line_id, free_lot)
    sale_id = await pool.fetchval("SELECT id FROM sales WHERE tenant_id = $1 LIMIT 1", costed)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"names sale {sale_id}"):
        await pool.execute("INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, "
                           "event_id) VALUES ($1, $2, 1, 1, 2, 'test', $3)", other, sale_id, uuid.uuid4())
    # The same rows with the right tenant are accepted (in a transaction rolled back).
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        await conn.execute("INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, "
                           "event_id) VALUES ($1, $2, 1, 1, 2, 'test', $3)", costed, sale_id, uuid.uuid4())
        await tr.rollback()


async def test_deleting_lines_lots_and_sales_takes_what_refers_to_them(pool, costed):
    line_id, lot_id = await pool.fetchrow(
        "SELECT line_id, lot_id FROM allocations WHERE tenant_id = $1 ORDER BY line_id LIMIT 1", costed)
    other_lot = await pool.fetchval("SELECT lot_id FROM allocations WHERE tenant_id = $1 AND lot_id <> $2 "
                                    "AND line_id <> $3 LIMIT 1", costed, lot_id, line_id)
    before = await pool.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1", costed)
    gone = await pool.fetchval("SELECT count(*) FROM allocations WHERE line_id = $1 OR lot_id = $2",
                               line_id, other_lot)
    await pool.execute("DELETE FROM sale_lines WHERE id = $1", line_id)
    await pool.execute("DELETE FROM lots WHERE id = $1", other_lot)
    assert await pool.fetchval("SELECT count(*) FROM allocations WHERE line_id = $1 OR lot_id = $2",
                               line_id, other_lot) == 0
    assert await pool.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1", costed) == before - gone

    revised = await pool.fetchval("SELECT sale_id FROM cost_revisions WHERE tenant_id = $1 LIMIT 1", costed)
    assert revised is not None
    others = await pool.fetchval("SELECT count(*) FROM cost_revisions WHERE tenant_id = $1 AND sale_id <> $2",
                                 costed, revised)
    await pool.execute("DELETE FROM sales WHERE id = $1", revised)
    assert await pool.fetchval("SELECT count(*) FROM cost_revisions WHERE sale_id = $1", revised) == 0
    assert await pool.fetchval("SELECT count(*) FROM cost_revisions WHERE tenant_id = $1", costed) == others
    assert await pool.fetchval("SELECT count(*) FROM allocations a LEFT JOIN sale_lines l ON l.id = a.line_id "
                               "WHERE a.tenant_id = $1 AND l.id IS NULL", costed) == 0
