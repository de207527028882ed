"""The channel tables after 0027 (docs/channels.md): per-provider keys, the per-provider
SECURITY DEFINER lookups, row-level security unchanged, and one QuickBooks company and one
Xero organisation of one tenant side by side, their sales apart by source."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from services.ingest.channels.admin import list_connections
from services.ingest.channels.repository import ChannelRepository
from shared.db import tenant_transaction
from tests.conftest import new_tenant

SECURITY_DEFINERS = """
SELECT p.proname, p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1"""


async def test_the_global_lookups_are_narrow_security_definers_closed_to_public(pool):
    rows = {r["proname"]: r for r in await pool.fetch(SECURITY_DEFINERS)}
    assert {"channel_realm_tenant", "channel_connected_realms", "qbo_realm_tenant", "qbo_connected_realms"} <= set(rows)
    for name, row in rows.items():
        assert not row["public_execute"], f"{name}: EXECUTE granted to PUBLIC"
        assert any(c.startswith("search_path=") for c in row["proconfig"] or []), f"{name}: search_path not pinned"


async def test_every_channel_table_with_a_tenant_forces_row_level_security(pool):
    rows = await pool.fetch(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY($1::text[])",
        ["qbo_connections", "qbo_entities", "qbo_items", "qbo_sync_runs", "oauth_states"],
    )
    assert len(rows) == 5 and all(r["relrowsecurity"] and r["relforcerowsecurity"] for r in rows)


async def test_a_company_and_an_organisation_of_one_tenant_side_by_side(pool, service_pool):
    tenant, other = await new_tenant(pool), await new_tenant(pool)
    account = f"acct-{uuid.uuid4().hex[:8]}"  # the same id in both providers: still two connections
    async with tenant_transaction(service_pool, tenant) as conn:
        for provider in ("quickbooks", "xero"):
            assert await ChannelRepository(conn, provider).upsert_connection(
                account, tenant, b"a", b"r", datetime.now(UTC)
            )
    async with tenant_transaction(service_pool, other) as conn:
        # Another tenant cannot take either (the realm is linked: the upsert changes nothing).
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await ChannelRepository(conn, "xero").upsert_connection(account, other, b"x", b"y", datetime.now(UTC))
    async with service_pool.acquire() as conn:
        for provider in ("quickbooks", "xero"):
            found = await ChannelRepository(conn, provider).realm_tenant(account)
            assert found is not None and found["tenant_id"] == tenant
        connected = await conn.fetch(
            "SELECT provider FROM channel_connected_realms() WHERE realm_id = $1 ORDER BY 1", account
        )
        assert [r["provider"] for r in connected] == ["quickbooks", "xero"]
        quickbooks_only = await ChannelRepository(conn, "quickbooks").connected_realms()
        assert account in {r["realm_id"] for r in quickbooks_only}
        assert await conn.fetchval("SELECT count(*) FROM qbo_realm_tenant($1)", account) == 1
    async with tenant_transaction(service_pool, tenant, readonly=True) as conn:
        both = await ChannelRepository(conn, "quickbooks").connections_of(tenant, every_provider=True)
        assert [(r["provider"], r["realm_id"]) for r in both] == [("quickbooks", account), ("xero", account)]
    async with pool.acquire() as conn:
        listed = await list_connections(conn, tenant)
    assert [r["provider"] for r in listed] == ["quickbooks", "xero"]


async def test_a_sale_of_each_source_with_the_same_number_is_two_sales(pool):
    tenant = await new_tenant(pool)
    for source in ("quickbooks", "xero", "manual"):
        await pool.execute(
            "INSERT INTO sales (tenant_id, source, type, external_id) VALUES ($1, $2, 'invoice', '1001')",
            tenant,
            source,
        )
    assert await pool.fetchval("SELECT count(*) FROM sales WHERE tenant_id = $1", tenant) == 3
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(
            "INSERT INTO sales (tenant_id, source, type, external_id) VALUES ($1, 'xero', 'invoice', '1001')", tenant
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO sales (tenant_id, source, type, external_id) VALUES ($1, 'shopify', 'invoice', '1')", tenant
        )
