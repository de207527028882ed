"""A transaction that fails with a serialization failure or a deadlock is run again
(shared/db.py retry_transient): applying an event, and resetting a tenant for a rebuild
(whose deletes can meet the query service's folder on the same sort keys)."""

from __future__ import annotations

import uuid

import pytest

from tests.histories import history
from tests.metrics import retries

# A trigger that fails the first statement touching the tenant's rows of ``table`` with
# ``errcode``, then lets every later one through (a sequence, which no rollback undoes).
FAIL_ONCE = """
CREATE SEQUENCE {name};
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('{name}') = 1 THEN
        RAISE EXCEPTION 'injected by the test' USING ERRCODE = '{errcode}';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {name} AFTER {operation} ON {table} FOR EACH ROW WHEN (OLD.tenant_id = '{tenant}'::uuid)
    EXECUTE FUNCTION {name}();"""


@pytest.fixture
async def fail_once(pool):
    """fail_once(table, operation, tenant, errcode): install the trigger; dropped afterwards."""
    names = []

    async def install(table: str, operation: str, tenant: uuid.UUID, errcode: str) -> str:
        name = f"fail_once_{uuid.uuid4().hex[:12]}"
        names.append((name, table))
        await pool.execute(
            FAIL_ONCE.format(name=name, table=table, operation=operation, tenant=tenant, errcode=errcode)
        )
        await pool.execute(f"GRANT USAGE ON SEQUENCE {name} TO PUBLIC")  # the trigger runs as the service role
        return name

    yield install
    for name, table in names:
        await pool.execute(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}(); DROP SEQUENCE {name}")


async def _costed(pool, costing, tenant_id) -> None:
    for event in history(tenant_id, seed=5, sales=12):
        await costing.apply(event)


@pytest.mark.parametrize("errcode", ["40001", "40P01"])  # serialization failure, deadlock
async def test_a_reset_that_fails_once_is_run_again(pool, costing, tenant_id, fail_once, errcode):
    await _costed(pool, costing, tenant_id)
    name = await fail_once("sales", "DELETE", tenant_id, errcode)
    await costing.reset_tenant(tenant_id)
    assert await pool.fetchval(f"SELECT last_value FROM {name}") >= 2  # failed once, then went through
    for table in ("sales", "sale_lines", "lots", "products", "allocations", "processed_events"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant_id) == 0, table


async def test_an_event_that_fails_once_is_applied_once(pool, costing, tenant_id, fail_once):
    events = history(tenant_id, seed=5, sales=12)
    for event in events[:-1]:
        await costing.apply(event)
    name = await fail_once("products", "UPDATE", tenant_id, "40001")
    retried = retries("contention")
    assert await costing.apply(events[-1]) is True
    assert await pool.fetchval(f"SELECT last_value FROM {name}") >= 2
    assert retries("contention") == retried + 1  # counted for the operator's retry-rate alert
    assert await costing.apply(events[-1]) is False  # applied once: its inbox row committed with its effect
