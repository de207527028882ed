"""Tenant isolation and secrets (issue 15), on the real PostgreSQL, RabbitMQ, services and
QuickBooks simulator: row-level security as the catalog declares it and as the database
enforces it, a pooled connection that never carries a tenant over, every HTTP endpoint
tried with another tenant's key, the services refusing to start without their secrets or
as a superuser, one token refresh for many concurrent reads, and the secret scanner
(tests/secret_scan.py) catching a planted key."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
import structlog
from yarl import URL

from services.costing.main import running_consumer
from services.ingest.admin import connect_quickbooks
from services.ingest.app import create_app as create_ingest
from services.ingest.qbo.app_keys import QBO
from services.query.app import _nothing_to_reset
from services.query.app import create_app as create_query
from shared import broker
from shared.db import create_pool, set_tenant, tenant_read, tenant_transaction
from tests import secret_scan
from tests.conftest import client_for, event_applied, make_api_tenant, settings_for, wait_for
from tests.integration.test_qbo_sync import qbo  # noqa: F401 - the fixture: a realm connected through the simulator

ROOT = Path(__file__).resolve().parents[2]

TENANT_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
WHERE c.relkind IN ('r', 'p')
  AND (c.relname = 'tenants' OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                                         AND a.attname = 'tenant_id' AND NOT a.attisdropped))
ORDER BY 1"""

POLICY_EXPRESSIONS = """
SELECT c.relname AS table, e.expression
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
CROSS JOIN LATERAL (VALUES (pg_get_expr(p.polqual, p.polrelid)),
                           (pg_get_expr(p.polwithcheck, p.polrelid))) e(expression)
WHERE e.expression IS NOT NULL"""

OWNED_IN_PUBLIC = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relowner = r.oid)
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner = r.oid)
     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typowner = r.oid)
     + (SELECT count(*) FROM pg_namespace n WHERE n.nspname = 'public' AND n.nspowner = r.oid)
FROM pg_roles r WHERE r.rolname = $1"""


async def tenant_table_names(pool) -> list[str]:
    return [r["relname"] for r in await pool.fetch(TENANT_TABLES)]


# 1. the catalog ---------------------------------------------------------------------------


async def test_every_tenant_table_forces_row_level_security_and_the_service_role_is_bound(pool, database_url):
    rows = await pool.fetch(TENANT_TABLES)
    names = {r["relname"] for r in rows}
    assert {"tenants", "sales", "catalog_products", "event_log", "api_keys", "qbo_connections"} <= names
    unprotected = [
        (r["relname"], r["relrowsecurity"], r["relforcerowsecurity"], r["policies"])
        for r in rows
        if not (r["relrowsecurity"] and r["relforcerowsecurity"] and r["policies"] >= 1)
    ]
    assert unprotected == [], (
        "tables with tenant data not bound by row-level security (name, enabled, forced, policies)"
    )
    # Each policy compares the row with the transaction's tenant, app_current_tenant(), in the
    # form measured cheaper for in-order costing (no initplan; docs/security.md).
    other_forms = [
        (r["table"], r["expression"])
        for r in await pool.fetch(POLICY_EXPRESSIONS)
        if "app_current_tenant()" not in r["expression"] or "SELECT" in r["expression"]
    ]
    assert other_forms == []

    role = URL(database_url).user
    found = await pool.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", role)
    assert found is not None, f"no role {role}"
    assert (found["rolsuper"], found["rolbypassrls"]) == (False, False)
    assert await pool.fetchval(OWNED_IN_PUBLIC, role) == 0
    privileges = {
        p: await pool.fetchval("SELECT has_table_privilege($1, 'public.event_log', $2)", role, p)
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
    }
    assert privileges == {"SELECT": True, "INSERT": True, "UPDATE": False, "DELETE": False, "TRUNCATE": False}


# two tenants with the same names, made through the real APIs --------------------------------


@dataclass
class World:
    ingest: object
    query: object
    a: uuid.UUID
    b: uuid.UUID
    headers_a: dict
    headers_b: dict
    realm_a: str
    sale_ids_a: list = field(default_factory=list)
    event_ids_a: list = field(default_factory=list)

    def markers_a(self) -> list[str]:
        """Text only tenant A's data holds: none of it may reach B."""
        return [
            "Secret-A",
            "ASKU-1",
            "ALOT-1",
            "INV-A",
            self.realm_a,
            *map(str, self.sale_ids_a),
            *map(str, self.event_ids_a),
        ]


def sale_body(reference: str | None, sku: str, quantity: str, customer: str) -> dict:
    body = {
        "reference": reference,
        "type": "invoice",
        "date": "2026-02-01",
        "customer": customer,
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "19.99"}],
    }
    return {k: v for k, v in body.items() if v is not None}


def lot_body(sku: str, lot_number: str, quantity: str, unit_cost: str) -> dict:
    return {
        "sku": sku,
        "lot_number": lot_number,
        "quantity": quantity,
        "unit_cost": unit_cost,
        "received_at": "2026-01-05T08:00:00+00:00",
    }


async def write(pool, client, headers, method: str, path: str, body=None, status: int = 202) -> list[str]:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status == status, await response.text()
    event_ids = (await response.json()).get("event_ids", [])
    for event_id in event_ids:
        await wait_for(functools.partial(event_applied, pool, event_id))
    return event_ids


@pytest.fixture(scope="module")
async def world(pool, database_url):
    """Tenants A and B, both with product W-1, its lot L1 and sale INV-1; A alone with product
    ASKU-1, lot ALOT-1, sales INV-A (and INV-A2, short of stock) and a QuickBooks realm.
    Costed by the real consumer; the ingest and query apps stay up for the module."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    a, headers_a = await make_api_tenant(pool, "Secret-A Corp")
    b, headers_b = await make_api_tenant(pool, "Beta")
    settings = settings_for(
        database_url,
        prefix,
        qbo_api_base="http://127.0.0.1:9",
        qbo_cdc_interval_seconds=3600,
        qbo_oauth_token_url="http://127.0.0.1:9/token",
        qbo_oauth_revoke_url="http://127.0.0.1:9/r",
    )
    ingest = await client_for(create_ingest(settings))
    query = await client_for(create_query(settings))
    try:
        async with running_consumer(settings) as (_, _, topology):
            world = World(ingest, query, a, b, headers_a, headers_b, f"realm-A-{uuid.uuid4().hex[:8]}")
            for method, path, body in (
                ("POST", "/api/v1/products", {"sku": "W-1", "name": "Secret-A widget"}),
                ("POST", "/api/v1/products", {"sku": "ASKU-1", "name": "Secret-A only"}),
                ("POST", "/api/v1/lots", lot_body("W-1", "L1", "10", "2.25")),
                ("POST", "/api/v1/lots", lot_body("ASKU-1", "ALOT-1", "5", "4.5")),
                ("POST", "/api/v1/sales", sale_body("INV-1", "W-1", "3", "Alice Secret-A")),
                ("POST", "/api/v1/sales", sale_body("INV-A", "ASKU-1", "1", "Alice Secret-A")),
                ("POST", "/api/v1/sales", sale_body("INV-A2", "W-1", "20", "Alice Secret-A")),
            ):
                world.event_ids_a += await write(pool, ingest, headers_a, method, path, body)
            for method, path, body in (
                ("POST", "/api/v1/products", {"sku": "W-1", "name": "B widget"}),
                ("POST", "/api/v1/lots", lot_body("W-1", "L1", "7", "1.1")),
                ("POST", "/api/v1/sales", sale_body("INV-1", "W-1", "1", "Bob of B")),
            ):
                await write(pool, ingest, headers_b, method, path, body)
            async with pool.acquire() as conn:
                assert await connect_quickbooks(conn, settings, a, world.realm_a, "fake-access", "fake-refresh", 3600)
            world.sale_ids_a = [r["id"] for r in await pool.fetch("SELECT id FROM sales WHERE tenant_id = $1", a)]
            assert len(world.sale_ids_a) == 3
            yield world
            await broker.delete(topology.costing.channel, topology.names)
    finally:
        await query.close()
        await ingest.close()


# 2. isolation by the database itself --------------------------------------------------------


async def attempt(conn, scope: uuid.UUID | None, sql: str, *args) -> str:
    """Run one statement in a transaction scoped to ``scope`` (or to none), then roll back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        if scope is not None:
            await set_tenant(conn, scope)
        return await conn.execute(sql, *args)
    finally:
        await transaction.rollback()


async def test_the_service_role_sees_and_writes_nothing_outside_its_tenant(pool, database_url, world):
    tables = await tenant_table_names(pool)
    owner_counts = {t: await pool.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
    for table in (
        "tenants",
        "api_keys",
        "catalog_products",
        "catalog_lots",
        "manual_sales",
        "event_log",
        "sales",
        "sale_lines",
        "lots",
        "allocations",
        "processed_events",
        "qbo_connections",
    ):
        assert owner_counts[table] > 0, f"{table}: no rows to hide, the test would prove nothing"
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in (None, "")
        seen = {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
        assert {t: n for t, n in seen.items() if n} == {}, "rows visible to the service role without a tenant"

        # Scoped to A: A's rows only, and B's names are refused on the way in.
        async with conn.transaction():
            await set_tenant(conn, world.a)
            assert {r["tenant_id"] for r in await conn.fetch("SELECT tenant_id FROM catalog_products")} == {world.a}
            assert await conn.fetchval("SELECT count(*) FROM tenants") == 1
        product = "INSERT INTO catalog_products (tenant_id, sku, name, version) VALUES ($1, 'RLS-1', 'x', 1)"
        assert await attempt(conn, world.a, product, world.a) == "INSERT 0 1"  # the grant is there
        for scope, target in ((world.a, world.b), (None, world.a)):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await attempt(conn, scope, product, target)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await attempt(
                conn, world.a, "INSERT INTO tenants (id, name, home_currency) VALUES ($1, 'x', 'USD')", uuid.uuid4()
            )
        # B's rows cannot be changed or removed from A's scope: they are not there.
        assert (
            await attempt(conn, world.a, "UPDATE catalog_products SET name = 'x' WHERE tenant_id = $1", world.b)
            == "UPDATE 0"
        )
        assert await attempt(conn, world.a, "DELETE FROM catalog_lots WHERE tenant_id = $1", world.b) == "DELETE 0"
        # A row moved to another tenant fails the check.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await attempt(conn, world.a, "UPDATE catalog_products SET tenant_id = $1 WHERE sku = 'W-1'", world.b)
    finally:
        await conn.close()


# 3. a pool of one connection, alternating tenants -------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize("reset", ["asyncpg", "none"], ids=["asyncpg-reset", "query-service-no-reset"])
async def test_one_pooled_connection_alternating_tenants_never_carries_a_tenant_over(world, database_url, reset):
    one = await create_pool(database_url, min_size=1, max_size=1, reset=_nothing_to_reset if reset == "none" else None)
    sql = "SELECT DISTINCT tenant_id FROM catalog_products"
    try:
        backends = set()
        for i in range(40):
            tenant, other = (world.a, world.b) if i % 2 == 0 else (world.b, world.a)
            async with tenant_read(one, tenant) as conn:
                backends.add(conn.get_server_pid())
                assert [r["tenant_id"] for r in await conn.fetch(sql)] == [tenant]
            async with tenant_transaction(one, other) as conn:
                assert [r["tenant_id"] for r in await conn.fetch(sql)] == [other]
                await conn.execute("UPDATE catalog_products SET updated_at = updated_at WHERE sku = 'W-1'")
            if i % 4 == 0:  # an errored unit of work in between
                with pytest.raises(asyncpg.DivisionByZeroError):
                    async with tenant_transaction(one, tenant) as conn:
                        await conn.execute("SELECT 1 / 0")
            elif i % 4 == 1:
                with pytest.raises(Boom):
                    async with tenant_read(one, tenant) as conn:
                        await conn.fetch(sql)
                        raise Boom
            elif i % 4 == 2:
                with pytest.raises(Boom):
                    async with tenant_transaction(one, tenant) as conn:
                        raise Boom
            assert await one.fetch(sql) == [], f"round {i}: a bare statement sees a tenant's rows"
            assert await one.fetchval("SELECT app_current_tenant()") is None
        assert len(backends) == 1  # one connection served every unit of work
    finally:
        await one.close()


# 4. cross-tenant over HTTP -----------------------------------------------------------------

CORE_TABLES = (
    "catalog_products",
    "catalog_lots",
    "manual_sales",
    "sales",
    "sale_lines",
    "sale_versions",
    "lots",
    "allocations",
    "event_log",
    "processed_events",
    "idempotency_keys",
    "api_keys",
    "products",
)


async def snapshot(pool, tenant_id) -> dict:
    """Tenant A's rows: what no request of B may change."""
    rows = {
        t: [r[0] for r in await pool.fetch(f'SELECT t::text FROM "{t}" t WHERE tenant_id = $1 ORDER BY 1', tenant_id)]
        for t in CORE_TABLES
    }
    rows["tenants"] = [r[0] for r in await pool.fetch("SELECT t::text FROM tenants t WHERE id = $1", tenant_id)]
    rows["qbo_connections"] = [
        tuple(r)
        for r in await pool.fetch(
            "SELECT realm_id, tenant_id, status, access_token, refresh_token FROM qbo_connections WHERE tenant_id = $1",
            tenant_id,
        )
    ]
    return rows


async def test_another_tenants_key_reaches_none_of_its_data(pool, world):
    """B's key on every endpoint, at A's names: 404 (or B's own rows of the same name);
    no answer holds anything of A's, and A's rows are unchanged."""
    w = world
    sale_a, event_a = w.sale_ids_a[0], w.event_ids_a[0]
    # (app, method, path, body, accepted statuses); "list": 200 with none of A's data
    requests = [
        ("ingest", "GET", "/api/v1/products", None, {200}),
        ("ingest", "GET", "/api/v1/products/ASKU-1", None, {404}),
        ("ingest", "GET", "/api/v1/products/W-1", None, {200}),  # B's own W-1
        ("ingest", "GET", "/api/v1/lots/ASKU-1/ALOT-1", None, {404}),
        ("ingest", "GET", "/api/v1/lots/W-1/L1", None, {200}),  # B's own L1
        ("ingest", "PATCH", "/api/v1/lots/ASKU-1/ALOT-1", {"quantity": "0"}, {404}),
        ("ingest", "POST", "/api/v1/lots", lot_body("ASKU-1", "ALOT-2", "1", "1"), {422}),  # B has no ASKU-1
        ("ingest", "POST", "/api/v1/products", {"sku": "W-1", "name": "B again"}, {409}),  # B's own W-1 exists
        ("ingest", "PUT", "/api/v1/sales/INV-A", sale_body(None, "W-1", "1", "B"), {404}),
        ("ingest", "POST", "/api/v1/sales/INV-A/void", None, {404}),
        ("ingest", "DELETE", "/api/v1/sales/INV-A2", None, {404}),
        ("ingest", "POST", "/api/v1/sales", sale_body("INV-1", "W-1", "1", "B"), {409}),  # B's own INV-1
        ("ingest", "PATCH", "/api/v1/lots/W-1/L1", {"quantity": "6"}, {202}),  # B's own lot of the same name
        ("ingest", "PUT", "/api/v1/sales/INV-1", sale_body(None, "W-1", "2", "Bob of B"), {202}),  # B's own INV-1
        ("ingest", "POST", "/api/v1/sales/INV-1/void", None, {202}),
        ("ingest", "DELETE", "/api/v1/sales/INV-1", None, {202, 409}),
        ("ingest", "GET", "/api/v1/connections/quickbooks", None, {200}),
        ("ingest", "POST", f"/api/v1/connections/quickbooks/{w.realm_a}/sync", None, {403, 404}),
        ("ingest", "POST", f"/api/v1/connections/quickbooks/{w.realm_a}/disconnect", None, {403, 404}),
        ("query", "GET", "/api/v1/sales", None, {200}),
        *[("query", "GET", f"/api/v1/sales/{sale_id}", None, {404}) for sale_id in w.sale_ids_a],
        ("query", "GET", "/api/v1/products/margins", None, {200}),
        ("query", "GET", "/api/v1/products/ASKU-1/stock", None, {404}),
        ("query", "GET", "/api/v1/products/W-1/stock", None, {200}),  # B's own
        ("query", "GET", "/api/v1/shortages", None, {200}),
        *[("query", "GET", f"/api/v1/events/{event_id}", None, {404}) for event_id in w.event_ids_a],
    ]
    assert sale_a and event_a
    before = await snapshot(pool, w.a)
    answers, b_events = [], []
    for app, method, path, body, accepted in requests:
        client = w.ingest if app == "ingest" else w.query
        response = await client.request(method, path, json=body, headers=w.headers_b)
        text = await response.text()
        answers.append((app, method, path, response.status, accepted, text))
        if response.status == 202:
            b_events += json.loads(text).get("event_ids", [])
    wrong = [(a, m, p, s, sorted(acc)) for a, m, p, s, acc, _ in answers if s not in acc]
    assert wrong == [], "unexpected statuses (app, method, path, status, accepted)"
    # (a 404 may repeat the name it was asked about: a marker of the request itself does not count)
    leaks = [
        (a, m, p, marker)
        for (a, m, p, _, _, text), (*_, body, _) in zip(answers, requests, strict=True)
        for marker in w.markers_a()
        if marker in text and marker not in p + json.dumps(body)
    ]
    assert leaks == [], "A's data in B's answers"
    # PUT of a product is an upsert: at A's sku it makes B a product of its own
    response = await w.ingest.put("/api/v1/products/ASKU-1", json={"name": "B's own"}, headers=w.headers_b)
    assert response.status == 202, await response.text()
    b_events += (await response.json())["event_ids"]
    for event_id in b_events:
        await wait_for(functools.partial(event_applied, pool, event_id))
    assert await snapshot(pool, w.a) == before, "a request with B's key changed A's rows"
    # and A still sees its own
    response = await w.query.get(f"/api/v1/sales/{sale_a}", headers=w.headers_a)
    assert response.status == 200, await response.text()
    listing = await (await w.ingest.get("/api/v1/connections/quickbooks", headers=w.headers_a)).json()
    assert [c["realm_id"] for c in listing["items"]] == [w.realm_a]


# 5. start-up refusals ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SECRETS = ("TOKEN_ENCRYPTION_KEY", "TOKEN_ENCRYPTION_OLD_KEYS", "OAUTH_STATE_SECRET")


#: A service that refuses to start exits within this many seconds.
REFUSE_WITHIN = 45.0


async def start_service(module: str, env: dict) -> tuple[int, str]:
    """Run ``python -m module``; its exit code and output. A service still running after
    ``REFUSE_WITHIN`` s did not refuse: it is killed and the test fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), REFUSE_WITHIN)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
        secret_scan.record(out.decode(errors="replace"))
        pytest.fail(
            f"{module} was still running after {REFUSE_WITHIN}s: it did not refuse to start\n{out.decode()[-2000:]}"
        )
    text = out.decode(errors="replace")
    secret_scan.record(text)
    return process.returncode, text


def service_env(database_url: str, broker_prefix: str, **changes: str | None) -> dict:
    from tests.conftest import TEST_AMQP_URL

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_OWNER_URL")}
    port = str(free_port())
    env.update(
        DATABASE_URL=database_url,
        AMQP_URL=TEST_AMQP_URL,
        BROKER_PREFIX=broker_prefix,
        LOG_FORMAT="json",
        INGEST_PORT=port,
        QUERY_PORT=port,
        COSTING_PORT=port,
        PYTHONUNBUFFERED="1",
    )
    for name, value in changes.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"TOKEN_ENCRYPTION_KEY": None}, "TOKEN_ENCRYPTION_KEY"),
        ({"OAUTH_STATE_SECRET": None}, "OAUTH_STATE_SECRET"),
        ({"TOKEN_ENCRYPTION_KEY": "not base64!"}, "TOKEN_ENCRYPTION_KEY"),
        ({"TOKEN_ENCRYPTION_KEY": "c2hvcnQga2V5"}, "TOKEN_ENCRYPTION_KEY"),  # base64 of 9 bytes
        ({"OAUTH_STATE_SECRET": "short"}, "OAUTH_STATE_SECRET"),
    ],
    ids=["no-token-key", "no-state-secret", "malformed-token-key", "short-token-key", "short-state-secret"],
)
async def test_ingest_refuses_to_start_without_its_secrets(pool, database_url, broker_prefix, changes, named):
    code, out = await start_service("services.ingest", service_env(database_url, broker_prefix, **changes))
    assert code != 0, out
    assert "startup.refused" in out and named in out, out
    for value in filter(None, changes.values()):  # a malformed value is named, never echoed
        assert value not in out, out


@pytest.mark.parametrize("module", ["services.ingest", "services.query", "services.costing"])
async def test_services_refuse_to_start_as_a_superuser(pool, owner_database_url, broker_prefix, module):
    code, out = await start_service(module, service_env(owner_database_url, broker_prefix))
    assert code != 0, out
    assert "startup.refused" in out and "superuser" in out, out


# 6. one token refresh for many concurrent reads -------------------------------------------


@pytest.mark.parametrize("expiry", ["rejected-by-quickbooks", "expired-in-the-database"])
async def test_an_expired_token_is_refreshed_once_for_twenty_concurrent_reads(qbo, expiry):  # noqa: F811
    channel = qbo.ingest.app[QBO]
    before = await qbo.stats()
    row_before = await qbo.pool.fetchrow(
        "SELECT access_token, refresh_token FROM qbo_connections WHERE realm_id = $1", qbo.realm
    )
    if expiry == "rejected-by-quickbooks":  # the cached token is answered 401
        assert (await qbo.sim_call("POST", f"/sim/{qbo.realm}/tokens/expire", {}))["expired"] >= 1
    else:  # the stored expiry has passed, and the process has nothing cached (as after a restart)
        await qbo.pool.execute(
            "UPDATE qbo_connections SET access_expires_at = now() - interval '1 hour' WHERE realm_id = $1", qbo.realm
        )
        channel.tokens._cache.clear()
    items = await asyncio.gather(*(channel.client.read(qbo.realm, "Item", qbo.items["W-1"]) for _ in range(20)))
    assert {item["Id"] for item in items} == {qbo.items["W-1"]}
    after = await qbo.stats()
    assert after["token_refreshes"] - before["token_refreshes"] == 1, (before, after)
    assert after["token_refresh_failures"] == before["token_refresh_failures"]
    row_after = await qbo.pool.fetchrow(
        "SELECT access_token, refresh_token, status, access_expires_at > now() AS fresh FROM qbo_connections "
        "WHERE realm_id = $1",
        qbo.realm,
    )
    assert (row_after["status"], row_after["fresh"]) == ("connected", True)
    assert row_after["refresh_token"] != row_before["refresh_token"]  # the rotated refresh token is kept


# 7. the secret scanner can fail ------------------------------------------------------------


async def test_the_secret_scanner_finds_a_planted_key_in_logs_and_in_the_database(pool, owner_database_url):
    from shared.api_keys import create_key

    async with pool.acquire() as conn:
        planted = (await create_key(conn, (await make_api_tenant(pool, "Planted"))[0])).key
    access = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + "x" * 80
    refresh = "AB11" + "0123456789abcdef" * 3
    line = json.dumps({"event": "oops", "note": f"key {planted} tokens {access} {refresh}"})
    found = secret_scan.scan_text(line, "a planted line")
    assert [f.split(" in clear")[0] for f in found] == ["api key", "access token", "refresh token"]
    assert secret_scan.scan_text(line.replace(planted, planted.rsplit("_", 1)[0]), "prefix only") != found

    # what the services log reaches the record (production's JSON lines, redaction applied)
    marker = f"scan-marker-{uuid.uuid4().hex}"
    structlog.get_logger("security-test").info(
        "secret_scan.probe", marker=marker, api_key="psk_000000000000_" + "s" * 43
    )
    import logging

    logging.getLogger("security-test").warning("stdlib %s", marker + "-stdlib")
    recorded = secret_scan.log_path().read_text().splitlines()
    [probe] = [line for line in recorded if marker in line and "secret_scan.probe" in line]
    assert json.loads(probe)["api_key"] == "[redacted]"
    assert any(marker + "-stdlib" in line for line in recorded)

    # a key stored in clear in the database is found in the dump
    await pool.execute("CREATE TABLE secret_scan_probe (v text)")
    try:
        await pool.execute("INSERT INTO secret_scan_probe VALUES ($1)", planted)
        dump = await asyncio.to_thread(secret_scan.dump_database, owner_database_url)
        assert any(planted[:24] in f for f in secret_scan.scan_text(dump, "dump"))
    finally:
        await pool.execute("DROP TABLE secret_scan_probe")
