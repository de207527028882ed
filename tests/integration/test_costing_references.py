"""The references of allocations, cost revisions, sale lines and sale versions, checked per
statement by 0010_bulk_reference_checks.sql and 0015_line_reference_checks.sql instead of
per-row foreign keys: a row naming what does not exist (or another tenant's) is refused,
deleting a line, lot or sale takes what refers to it along, and a product that lines
name cannot be deleted."""

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
        "SELECT line_id, lot_id FROM allocations WHERE tenant_id = $1 LIMIT 1", costed
    )
    missing = await pool.fetchval("SELECT max(id) + 1000 FROM sale_lines")
    for line, lot in ((missing, lot_id), (line_id, missing + 10**6)):
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="names no line or lot of its tenant"):
            await pool.execute(
                "INSERT INTO allocations (tenant_id, line_id, lot_id, quantity) "
                "SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::numeric[])",
                costed,
                [line],
                [lot],
                [1],
            )


async def test_allocation_or_revision_of_another_tenant_is_refused(pool, costed):
    other = await new_tenant(pool, "other")
    line_id = await pool.fetchval("SELECT line_id FROM allocations WHERE tenant_id = $1 LIMIT 1", costed)
    free_lot = await pool.fetchval(
        "SELECT id FROM lots WHERE tenant_id = $1 AND id NOT IN "
        "(SELECT lot_id FROM allocations WHERE line_id = $2) LIMIT 1",
        costed,
        line_id,
    )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute(
            "INSERT INTO allocations (tenant_id, line_id, lot_id, quantity) VALUES ($1, $2, $3, 5)",
            other,
            line_id,
            free_lot,
        )
    sale_id = await pool.fetchval("SELECT id FROM sales WHERE tenant_id = $1 LIMIT 1", costed)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"names sale {sale_id}"):
        await pool.execute(
            "INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, "
            "event_id) VALUES ($1, $2, 1, 1, 2, 'test', $3)",
            other,
            sale_id,
            uuid.uuid4(),
        )
    # The same rows with the right tenant are accepted (in a transaction rolled back).
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        await conn.execute(
            "INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, "
            "event_id) VALUES ($1, $2, 1, 1, 2, 'test', $3)",
            costed,
            sale_id,
            uuid.uuid4(),
        )
        await tr.rollback()


async def test_deleting_lines_lots_and_sales_takes_what_refers_to_them(pool, costed):
    line_id, lot_id = await pool.fetchrow(
        "SELECT line_id, lot_id FROM allocations WHERE tenant_id = $1 ORDER BY line_id LIMIT 1", costed
    )
    other_lot = await pool.fetchval(
        "SELECT lot_id FROM allocations WHERE tenant_id = $1 AND lot_id <> $2 AND line_id <> $3 LIMIT 1",
        costed,
        lot_id,
        line_id,
    )
    before = await pool.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1", costed)
    gone = await pool.fetchval("SELECT count(*) FROM allocations WHERE line_id = $1 OR lot_id = $2", line_id, other_lot)
    await pool.execute("DELETE FROM sale_lines WHERE id = $1", line_id)
    await pool.execute("DELETE FROM lots WHERE id = $1", other_lot)
    assert (
        await pool.fetchval("SELECT count(*) FROM allocations WHERE line_id = $1 OR lot_id = $2", line_id, other_lot)
        == 0
    )
    assert await pool.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1", costed) == before - gone

    revised = await pool.fetchval("SELECT sale_id FROM cost_revisions WHERE tenant_id = $1 LIMIT 1", costed)
    assert revised is not None
    others = await pool.fetchval(
        "SELECT count(*) FROM cost_revisions WHERE tenant_id = $1 AND sale_id <> $2", costed, revised
    )
    await pool.execute("DELETE FROM sales WHERE id = $1", revised)
    assert await pool.fetchval("SELECT count(*) FROM cost_revisions WHERE sale_id = $1", revised) == 0
    assert await pool.fetchval("SELECT count(*) FROM cost_revisions WHERE tenant_id = $1", costed) == others
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM allocations a LEFT JOIN sale_lines l ON l.id = a.line_id "
            "WHERE a.tenant_id = $1 AND l.id IS NULL",
            costed,
        )
        == 0
    )


# Lines and sale versions (0015_line_reference_checks.sql).

COPY_LINE = """
INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue,
                        revenue, candidate, in_demand, txn_date, source_created_at, source, external_id, sale_type)
SELECT $1, $2, line_no + 1000, sku, $3, description, kind, quantity, gross_revenue, revenue, candidate, false,
       txn_date, source_created_at, source, external_id, sale_type
FROM sale_lines WHERE id = $4"""

COPY_VERSION = """
INSERT INTO sale_versions (tenant_id, sale_id, version, event_id, event_type, applied, note)
VALUES ($1, $2, 1000, $3, 'sale.upserted', false, 'test')"""


async def test_line_or_version_naming_another_tenants_sale_or_product_is_refused(pool, costed):
    other = await new_tenant(pool, "other")
    line = await pool.fetchrow(
        "SELECT id, sale_id, product_id FROM sale_lines WHERE tenant_id = $1 AND product_id IS NOT NULL LIMIT 1", costed
    )
    missing = await pool.fetchval("SELECT max(id) + 1000 FROM products")
    refused = [
        (other, line["sale_id"], line["product_id"]),  # the other tenant's line of this sale
        (costed, line["sale_id"], missing),
    ]  # a product that does not exist
    for tenant, sale_id, product_id in refused:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="names no sale or product of its tenant"):
            await pool.execute(COPY_LINE, tenant, sale_id, product_id, line["id"])
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="names no sale or product of its tenant"):
        await pool.execute("UPDATE sale_lines SET product_id = $2 WHERE id = $1", line["id"], missing)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"names sale {line['sale_id']}"):
        await pool.execute(COPY_VERSION, other, line["sale_id"], uuid.uuid4())
    # The same rows for the right tenant, sale and product are accepted (rolled back).
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        await conn.execute(COPY_LINE, costed, line["sale_id"], line["product_id"], line["id"])
        another = await conn.fetchval(
            "SELECT id FROM products WHERE tenant_id = $1 AND id <> $2 LIMIT 1", costed, line["product_id"]
        )
        await conn.execute("UPDATE sale_lines SET product_id = $2 WHERE id = $1", line["id"], another)
        await conn.execute(COPY_VERSION, costed, line["sale_id"], uuid.uuid4())
        await tr.rollback()


async def test_deleting_a_sale_takes_its_lines_and_versions_and_a_named_product_stays(pool, costed):
    line = await pool.fetchrow(
        "SELECT sale_id, product_id FROM sale_lines WHERE tenant_id = $1 AND product_id IS NOT NULL LIMIT 1", costed
    )
    async with pool.acquire() as conn:  # its lots gone (they name it too), the product stays (rolled back)
        tr = conn.transaction()
        await tr.start()
        await conn.execute("DELETE FROM lots WHERE product_id = $1", line["product_id"])
        with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"product {line['product_id']} is still named"):
            await conn.execute("DELETE FROM products WHERE id = $1", line["product_id"])
        await tr.rollback()
    assert await pool.fetchval("SELECT count(*) FROM sale_versions WHERE sale_id = $1", line["sale_id"]) > 0
    await pool.execute("DELETE FROM sales WHERE id = $1", line["sale_id"])
    for table in ("sale_lines", "sale_versions"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE sale_id = $1", line["sale_id"]) == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sale_lines l LEFT JOIN sales s ON s.id = l.sale_id "
            "WHERE l.tenant_id = $1 AND s.id IS NULL",
            costed,
        )
        == 0
    )
