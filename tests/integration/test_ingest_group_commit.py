"""Group commit of new manual sales (services/ingest/group_commit.py): concurrent POSTs of
one tenant share transactions, each request still gets its own answer (202 after the
commit, 409 for a reference that exists, 422 for a refused exchange rate), nothing of a
refused request is written, tenants never share a transaction, and a key revoked while
its requests wait is refused."""

from __future__ import annotations

import asyncio
import contextlib

from services.ingest.app_keys import GROUP_COMMIT
from shared.api_keys import create_key, revoke_key
from tests.conftest import make_api_tenant, wait_for
from tests.integration.test_ingest_api import SALES, sale


async def _post(client, headers, body) -> tuple[int, dict]:
    response = await client.post(SALES, json=body, headers=headers)
    return response.status, await response.json()


async def _drained(pool) -> None:
    with contextlib.suppress(AssertionError):
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=3)
    await asyncio.sleep(0.1)


async def test_concurrent_sales_share_transactions_and_keep_their_answers(pool, topology, ingest):
    tenant_id, headers = await make_api_tenant(pool, "Grouped")
    other_id, other_headers = await make_api_tenant(pool, "Other")
    group = ingest.app[GROUP_COMMIT]
    batches = group.batches
    bodies = [sale(f"G-{n}") for n in range(40)]
    bodies.append(sale("G-7"))  # the same reference again: one of the two gets 409
    bodies.append(sale("G-FX", currency="EUR"))  # no exchange rate for a foreign currency: 422
    results = await asyncio.gather(
        *(_post(ingest, headers, b) for b in bodies), *(_post(ingest, other_headers, sale(f"O-{n}")) for n in range(10))
    )
    mine, theirs = results[: len(bodies)], results[len(bodies) :]
    assert sorted(status for status, _ in mine) == [202] * 40 + [409, 422]
    assert all(status == 202 for status, _ in theirs)
    assert group.batches - batches < len(results)  # some requests shared a transaction
    for tenant, references in ((tenant_id, 40), (other_id, 10)):
        assert await pool.fetchval("SELECT count(*) FROM manual_sales WHERE tenant_id = $1", tenant) == references
        logged = await pool.fetch("SELECT event_id FROM event_log WHERE tenant_id = $1", tenant)
        assert len(logged) == references
    answered = {e for status, body in mine if status == 202 for e in body["event_ids"]}
    logged = {
        str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM event_log WHERE tenant_id = $1", tenant_id)
    }
    assert answered == logged
    await _drained(pool)


async def test_a_key_revoked_while_cached_is_refused_in_a_batch(pool, topology, ingest):
    tenant_id, _ = await make_api_tenant(pool, "Revoked")
    async with pool.acquire() as conn:
        key = await create_key(conn, tenant_id)
    headers = {"Authorization": f"Bearer {key.key}"}
    assert (await _post(ingest, headers, sale("R-1")))[0] == 202  # the key is cached now
    async with pool.acquire() as conn:
        assert await revoke_key(conn, str(key.id))
    statuses = [s for s, _ in await asyncio.gather(*(_post(ingest, headers, sale(f"R-{n}")) for n in range(2, 8)))]
    assert statuses == [401] * 6
    assert await pool.fetchval("SELECT count(*) FROM manual_sales WHERE tenant_id = $1", tenant_id) == 1
    await _drained(pool)
