"""API keys against the real ingest and query apps: optional expiry, revocation, the
last-used time (recorded at most once a minute per key), the per-key rate limit, an
Authorization header that is not UTF-8, and ``admin`` showing expiry and last use."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from services.ingest import admin
from services.ingest.app import create_app as create_ingest_app
from services.query.app import create_app as create_query_app
from shared.api_keys import KeyMatch, KeyUsage, RateLimiter, bearer_key, create_key, revoke_key, tenant_for_key
from tests.conftest import client_for, make_api_tenant, settings_for

SECRETS = {"oauth_state_secret": "s" * 40, "token_encryption_key": base64.b64encode(bytes(range(32))).decode()}
INGEST_GET, QUERY_GET = "/api/v1/products", "/api/v1/sales"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def apps(database_url: str, broker_prefix: str, **settings):
    """The ingest and the query app, both with ``settings``."""
    ingest = await client_for(create_ingest_app(settings_for(database_url, broker_prefix, **SECRETS, **settings)))
    try:
        query = await client_for(create_query_app(settings_for(database_url, broker_prefix, **SECRETS, **settings)))
        try:
            yield ingest, query
        finally:
            await query.close()
    finally:
        await asyncio.sleep(0.1)  # the relay goes idle before the app stops
        await ingest.close()


@pytest.fixture
async def both(pool, database_url, broker_prefix):
    async with apps(database_url, broker_prefix) as clients:
        yield clients


def auth_middleware_of(client):
    """The app's auth middleware (shared.web.auth_middleware), with its limiter and usage record."""
    return next(m for m in client.server.app.middlewares if hasattr(m, "usage"))


async def expect_401(response) -> dict:
    text = await response.text()
    assert response.status == 401, text
    assert response.content_type == "application/json"
    body = json.loads(text)
    assert body["error"] == "unauthorized" and set(body) == {"error", "detail"}
    return body


async def new_key(pool, tenant_id, expires_at=None):
    async with pool.acquire() as conn:
        return await create_key(conn, tenant_id, expires_at)


# expiry and revocation ------------------------------------------------------------------


async def test_expired_key_is_401_on_both_services(pool, both, api_tenant):
    tenant_id, _ = api_tenant
    key = await new_key(pool, tenant_id, datetime.now(UTC) - timedelta(seconds=1))
    for client, path in zip(both, (INGEST_GET, QUERY_GET), strict=True):
        body = await expect_401(await client.get(path, headers=bearer(key.key)))
        assert str(tenant_id) not in json.dumps(body)


async def test_key_with_future_expiry_works_until_it_expires(pool, both, api_tenant):
    tenant_id, _ = api_tenant
    key = await new_key(pool, tenant_id, datetime.now(UTC) + timedelta(days=1))
    for client, path in zip(both, (INGEST_GET, QUERY_GET), strict=True):
        response = await client.get(path, headers=bearer(key.key))
        assert response.status == 200, await response.text()
    await pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key.id)
    for client, path in zip(both, (INGEST_GET, QUERY_GET), strict=True):
        await expect_401(await client.get(path, headers=bearer(key.key)))


async def test_revoked_key_is_401_on_both_services(pool, both, api_tenant):
    tenant_id, _ = api_tenant
    key = await new_key(pool, tenant_id)
    for client, path in zip(both, (INGEST_GET, QUERY_GET), strict=True):
        assert (await client.get(path, headers=bearer(key.key))).status == 200
    async with pool.acquire() as conn:
        assert await revoke_key(conn, str(key.id))
    for client, path in zip(both, (INGEST_GET, QUERY_GET), strict=True):
        await expect_401(await client.get(path, headers=bearer(key.key)))


async def test_lookup_function_returns_live_keys_only(pool, api_tenant):
    tenant_id, _ = api_tenant
    live = await new_key(pool, tenant_id, datetime.now(UTC) + timedelta(hours=1))
    expired = await new_key(pool, tenant_id, datetime.now(UTC) - timedelta(hours=1))
    row = await pool.fetchrow("SELECT * FROM api_key_lookup($1)", live.prefix)
    assert (row["id"], row["tenant_id"]) == (live.id, tenant_id) and row["expires_at"] is not None
    assert await pool.fetchrow("SELECT * FROM api_key_lookup($1)", expired.prefix) is None
    assert await pool.fetchval("SELECT prosecdef FROM pg_proc WHERE proname = 'api_key_lookup'")


# last used ------------------------------------------------------------------------------


async def test_last_used_is_recorded_once_per_minute_not_per_request(
    pool, database_url, broker_prefix, both, api_tenant
):
    tenant_id, _ = api_tenant
    ingest, query = both
    key = await new_key(pool, tenant_id)
    last_used = "SELECT last_used_at FROM api_keys WHERE id = $1"
    assert await pool.fetchval(last_used, key.id) is None

    usage = auth_middleware_of(ingest).usage
    writes = usage.writes
    assert (await ingest.get(INGEST_GET, headers=bearer(key.key))).status == 200
    assert await pool.fetchval(last_used, key.id) is not None
    assert usage.writes == writes + 1
    # Pretend the stored time is old: a second request within the minute must not even try to
    # write (the in-process memo), or it would overwrite this.
    old = datetime(2000, 1, 1, tzinfo=UTC)
    await pool.execute("UPDATE api_keys SET last_used_at = $2 WHERE id = $1", key.id, old)
    for _ in range(3):
        assert (await ingest.get(INGEST_GET, headers=bearer(key.key))).status == 200
    assert usage.writes == writes + 1
    assert await pool.fetchval(last_used, key.id) == old

    # Another process (here: the query app) has its own memo: it records the use.
    assert (await query.get(QUERY_GET, headers=bearer(key.key))).status == 200
    recorded = await pool.fetchval(last_used, key.id)
    assert recorded > old
    # ... and yet another would find it recorded within the minute and write no row.
    async with apps(database_url, broker_prefix) as (_, other_query):
        assert (await other_query.get(QUERY_GET, headers=bearer(key.key))).status == 200
    assert await pool.fetchval(last_used, key.id) == recorded


async def test_key_usage_records_again_after_the_interval(pool, api_tenant):
    tenant_id, _ = api_tenant
    key = await new_key(pool, tenant_id)
    now = [1000.0]
    usage = KeyUsage(interval=60, clock=lambda: now[0])
    match = KeyMatch(key.id, tenant_id)
    await usage.touch(pool, match)
    await usage.touch(pool, match)
    assert usage.writes == 1
    now[0] += 61
    await pool.execute("UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1", key.id)
    await usage.touch(pool, match)
    assert usage.writes == 2
    assert await pool.fetchval(
        "SELECT now() - last_used_at < interval '10 seconds' FROM api_keys WHERE id = $1", key.id
    )
    # The memo forgets keys not used within the interval.
    now[0] += 200
    other = await new_key(pool, tenant_id)
    await usage.touch(pool, KeyMatch(other.id, tenant_id))
    assert set(usage._recorded) == {other.id}


# rate limit -----------------------------------------------------------------------------


async def test_rate_limit_per_key_on_both_services(pool, database_url, broker_prefix):
    tenant_id, headers = await make_api_tenant(pool)
    second = await new_key(pool, tenant_id)
    async with apps(database_url, broker_prefix, api_rate_limit_per_minute=3) as clients:
        for client, path in zip(clients, (INGEST_GET, QUERY_GET), strict=True):
            for _ in range(3):
                response = await client.get(path, headers=headers)
                assert response.status == 200, await response.text()
            response = await client.get(path, headers=headers)
            assert response.status == 429, await response.text()
            assert response.content_type == "application/json"
            assert (await response.json())["error"] == "rate_limited"
            assert 1 <= int(response.headers["Retry-After"]) <= 20  # one request per 20 s
            # Another key of the same tenant has its own bucket.
            assert (await client.get(path, headers=bearer(second.key))).status == 200
            # Unauthenticated paths are not limited.
            for _ in range(5):
                assert (await client.get("/healthz")).status == 200
        for _ in range(5):
            assert (await clients[1].get("/api/v1/openapi.json")).status == 200


def test_rate_limiter_refills_and_forgets_idle_keys():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    a, b = uuid.uuid4(), uuid.uuid4()
    assert limiter.acquire(a) == 0 and limiter.acquire(a) == 0
    assert limiter.acquire(a) == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.acquire(a) == 0
    assert limiter.acquire(b) == 0
    now[0] += 10.0  # both refilled: dropped at the next sweep
    limiter.acquire(uuid.uuid4())
    assert len(limiter) == 1
    assert not RateLimiter(per_minute=0).enabled


# the Authorization header ---------------------------------------------------------------


async def raw_get(client, path: str, header_lines: list[bytes]) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            + b"".join(line + b"\r\n" for line in header_lines)
            + b"\r\n"
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), data
    return status, json.loads(body)


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer \xff\xfe\x80",
        b"Bearer psk_\xc3\x28_abc",
        b"\xff",
        b"Bearer psk_abcdef012345_\xe9t\xe9",
        "Bearer psk_abcdef012345_été".encode(),
    ],
    ids=repr,
)
async def test_undecodable_authorization_is_401_json(both, api_tenant, value):
    _, headers = api_tenant
    with capture_logs() as logs:
        for client, path in zip(both, (INGEST_GET, QUERY_GET), strict=True):
            status, body = await raw_get(client, path, [b"Authorization: " + value])
            assert status == 401 and body["error"] == "unauthorized", body
            # A valid key followed by a stray byte is no key either.
            line = b"Authorization: " + headers["Authorization"].encode() + b"\xff"
            status, body = await raw_get(client, path, [line])
            assert status == 401, body
    assert "\udcff" not in repr(logs) and "psk_" not in repr(logs)


async def test_a_valid_key_over_raw_bytes_works_and_two_authorization_headers_do_not(both, api_tenant):
    _, headers = api_tenant
    line = b"Authorization: " + headers["Authorization"].encode()
    for client, path in zip(both, (INGEST_GET, QUERY_GET), strict=True):
        assert (await raw_get(client, path, [line]))[0] == 200
        assert (await raw_get(client, path, [line, line]))[0] == 401


async def test_tenant_for_key_refuses_what_is_no_key_without_asking_the_database(pool, api_tenant):
    _, headers = api_tenant
    key = headers["Authorization"].split(" ", 1)[1]
    assert await tenant_for_key(pool, key) == api_tenant[0]

    class NoDatabase:
        async def fetchrow(self, *args):
            raise AssertionError("asked the database")

    # As aiohttp hands a header with bytes that are not UTF-8 (surrogate escapes), or not ASCII.
    for value in (key + "\udcff", key[:-1] + "é", "psk_\udcff_abc", "", key + " x"):
        assert await tenant_for_key(NoDatabase(), value) is None


def test_bearer_key_is_total():
    key = "psk_abcdef012345_" + "A" * 43
    assert bearer_key(f"Bearer {key}".encode()) == key
    assert bearer_key(f"bearer   {key}  ") == key
    for value in (
        None,
        b"",
        b"\xff\xfe",
        "Bearer psk_ab_\udcff",
        "Bearer " + key + "\x00",
        "Bearer psk_a b_c",
        "Basic " + key,
        b"Bearer psk_" + b"a" * 100 + b"_x",
    ):
        assert bearer_key(value) is None


# admin ----------------------------------------------------------------------------------


async def run_admin(database_url: str, capsys, *argv: str) -> str:
    code = await admin.run(admin._parser().parse_args(list(argv)), settings_for(database_url, "unused", **SECRETS))
    out = capsys.readouterr().out
    assert code == 0, out
    # What the command printed, without the log records of background tasks in this process.
    return "\n".join(line for line in out.splitlines() if not _is_log_record(line))


def _is_log_record(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and {"event", "level"} <= record.keys()


async def test_admin_keys_with_expiry_and_last_used(pool, database_url, broker_prefix, capsys):
    created = json.loads(
        await run_admin(database_url, capsys, "create-tenant", "Keys Ltd", "--key-expires-in-days", "2", "--json")
    )
    tenant = created["tenant_id"]
    made = json.loads(
        await run_admin(database_url, capsys, "create-key", "--tenant", tenant, "--expires-in-days", "30", "--json")
    )
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    await run_admin(database_url, capsys, "create-key", "--tenant", tenant)  # no expiry, as before

    rows = json.loads(await run_admin(database_url, capsys, "list-keys", "--tenant", tenant, "--json"))
    assert len(rows) == 3 and all(r["last_used_at"] is None for r in rows)
    assert sorted(r["expires_at"] is None for r in rows) == [False, False, True]

    async with apps(database_url, broker_prefix) as (ingest, _):
        assert (await ingest.get(INGEST_GET, headers=bearer(made["api_key"]))).status == 200
    rows = {
        r["id"]: r for r in json.loads(await run_admin(database_url, capsys, "list-keys", "--tenant", tenant, "--json"))
    }
    assert rows[made["key_id"]]["last_used_at"] is not None
    assert datetime.fromisoformat(rows[made["key_id"]]["expires_at"]) == expires

    text = await run_admin(database_url, capsys, "list-keys", "--tenant", tenant)
    line = next(line for line in text.splitlines() if line.startswith(made["key_id"]))
    assert f"expires {rows[made['key_id']]['expires_at']}" in line
    assert f"last used {rows[made['key_id']]['last_used_at']}" in line
    assert sum("last used never" in line for line in text.splitlines()) == 2
    assert sum("expires never" in line for line in text.splitlines()) == 1
    assert made["api_key"] not in text

    await run_admin(database_url, capsys, "revoke-key", made["key_id"])
    text = await run_admin(database_url, capsys, "list-keys", "--tenant", tenant)
    assert "REVOKED" in next(line for line in text.splitlines() if line.startswith(made["key_id"]))


def test_admin_refuses_a_bad_number_of_days():
    for days in ("0", "-1", "soon"):
        with pytest.raises(SystemExit):
            admin._parser().parse_args(["create-key", "--tenant", str(uuid.uuid4()), "--expires-in-days", days])
