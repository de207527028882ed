"""The QuickBooks connect flow cannot be hijacked: through the real ingest app and the
simulator's consent page, a browser (an aiohttp session with a cookie jar) connects a
company; every other way of reaching the callback links nothing and leaves existing
links as they were (checked in the database, not only by status)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs
from yarl import URL

from services.ingest.app import create_app
from services.ingest.qbo import connect as qbo_routes
from services.ingest.qbo import state as state_module
from services.ingest.qbo.state import digest, make_state, new_secret
from tests.conftest import TEST_DATABASE_URL, client_for, make_api_tenant, settings_for
from tools.qbo_sim.app import create_app as create_sim
from tools.qbo_sim.config import SimConfig

STATE_SECRET = "state-secret-" + "x" * 40
COOKIE = qbo_routes.COOKIE
TOKEN_KEY = os.environ["TOKEN_ENCRYPTION_KEY"]  # the run's key (tests/conftest.py): the worker reads every link


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Flow:
    sim: TestClient
    ingest: TestClient
    pool: object
    base: str  # the ingest app's origin

    def browser(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    def cookie(self, browser) -> str:
        return browser.cookie_jar.filter_cookies(URL(self.base + "/oauth/quickbooks/callback"))[COOKIE].value

    async def new_realm(self) -> str:
        response = await self.sim.post("/sim/companies", json={})
        assert response.status < 300, await response.text()
        return (await response.json())["realm_id"]

    async def start(self, browser, headers, json: bool = False) -> str:
        """connect: the authorize URL (the browser now holds the flow's cookie)."""
        accept = {"Accept": "application/json"} if json else {"Accept": "text/html,*/*;q=0.8"}
        async with browser.get(
            f"{self.base}/oauth/quickbooks/connect", headers={**headers, **accept}, allow_redirects=False
        ) as response:
            if json:
                assert response.status == 200, await response.text()
                url = (await response.json())["authorize_url"]
            else:
                assert response.status == 302, await response.text()
                url = response.headers["Location"]
            cookie = response.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/oauth/quickbooks"
            assert not cookie["secure"]  # plain http here; see test_cookie_is_secure_behind_https
        return url

    async def consent(self, browser, authorize_url: str, realm: str, deny: bool = False) -> str:
        """The simulator's consent page: the callback URL Intuit sends the browser to."""
        extra = {"realm": realm, **({"deny": "1"} if deny else {})}
        async with browser.get(f"{authorize_url}&{urlencode(extra)}", allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            return response.headers["Location"]

    async def finish(self, browser, callback_url: str, json: bool = False) -> tuple[int, str]:
        headers = {"Accept": "application/json"} if json else {}
        async with browser.get(callback_url, headers=headers, allow_redirects=False) as response:
            return response.status, await response.text()

    async def connect(self, browser, headers, realm: str, json: bool = False) -> tuple[int, str]:
        callback = await self.consent(browser, await self.start(browser, headers, json), realm)
        return await self.finish(browser, callback, json)

    async def link(self, realm: str):
        return await self.pool.fetchrow(
            "SELECT tenant_id, status, access_token, refresh_token FROM qbo_connections WHERE realm_id = $1", realm
        )

    async def nonce_used(self, url: str) -> object:
        """used_at of the oauth_states row of the state in ``url`` (authorize or callback URL)."""
        state = parse_qs(urlsplit(url).query)["state"][0]
        return await self.pool.fetchval(
            "SELECT used_at FROM oauth_states WHERE nonce_hash = $1",
            digest(state_module.read_state(state, STATE_SECRET.encode(), now=0).nonce),
        )


@pytest.fixture
async def flow(pool, database_url, broker_prefix):
    sim = await client_for(create_sim(SimConfig(log_level="WARNING")))
    sim_url = str(sim.make_url("")).rstrip("/")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        settings_for(
            database_url,
            broker_prefix,
            qbo_api_base=sim_url,
            qbo_oauth_token_url=f"{sim_url}/oauth2/v1/tokens/bearer",
            qbo_oauth_revoke_url=f"{sim_url}/v2/oauth2/tokens/revoke",
            qbo_oauth_authorize_url=f"{sim_url}/appcenter/connect/oauth2",
            qbo_client_id="sim-client",
            qbo_client_secret="sim-secret",
            qbo_redirect_uri=f"{base}/oauth/quickbooks/callback",
            qbo_cdc_interval_seconds=3600,
            oauth_state_secret=STATE_SECRET,
            token_encryption_key=TOKEN_KEY,
        )
    )
    ingest = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await ingest.start_server()
    try:
        yield Flow(sim, ingest, pool, base)
    finally:
        await ingest.close()
        await sim.close()


async def test_a_browser_connects_its_company_and_the_state_is_spent(flow, api_tenant):
    tenant, headers = api_tenant
    realm = await flow.new_realm()
    async with flow.browser() as browser:
        callback = await flow.consent(browser, await flow.start(browser, headers), realm)
        assert await flow.nonce_used(callback) is None
        status, page = await flow.finish(browser, callback)
        assert status == 200 and "QuickBooks connected" in page and page.startswith("<!doctype html>")
        assert COOKIE not in {c.key for c in browser.cookie_jar}  # cleared after use
    link = await flow.link(realm)
    assert (link["tenant_id"], link["status"]) == (tenant, "connected")
    assert await flow.nonce_used(callback) is not None
    # the initial import runs (the worker asked for a sync): the watermark is set
    for _ in range(200):
        if await flow.pool.fetchval("SELECT cdc_watermark FROM qbo_connections WHERE realm_id = $1", realm):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("no initial import after connecting")


async def test_a_front_end_gets_json_and_the_same_cookie(flow, api_tenant):
    tenant, headers = api_tenant
    realm = await flow.new_realm()
    async with flow.browser() as browser:
        status, body = await flow.connect(browser, headers, realm, json=True)
    assert status == 200, body
    assert '"status":"connected"' in body and '"initial_import_days":30' in body and realm in body
    assert (await flow.link(realm))["tenant_id"] == tenant


async def test_the_same_tenant_may_reconnect_its_company(flow, api_tenant):
    tenant, headers = api_tenant
    realm = await flow.new_realm()
    async with flow.browser() as browser:
        assert (await flow.connect(browser, headers, realm))[0] == 200
        first = await flow.link(realm)
        await flow.pool.execute("UPDATE qbo_connections SET status = 'reconnect_required' WHERE realm_id = $1", realm)
        assert (await flow.connect(browser, headers, realm))[0] == 200
    second = await flow.link(realm)
    assert (second["tenant_id"], second["status"]) == (tenant, "connected")
    assert second["access_token"] != first["access_token"]


async def test_a_state_links_once(flow, api_tenant):
    _, headers = api_tenant
    realm = await flow.new_realm()
    async with flow.browser() as browser:
        callback = await flow.consent(browser, await flow.start(browser, headers), realm)
        cookie = flow.cookie(browser)
        assert (await flow.finish(browser, callback))[0] == 200
        before = await flow.link(realm)
        # replayed with the cookie put back (the callback cleared it)
        browser.cookie_jar.update_cookies({COOKIE: cookie}, URL(flow.base + "/oauth/quickbooks/"))
        with capture_logs() as logs:
            status, page = await flow.finish(browser, callback)
    assert status == 400 and "already been used" in page
    assert await flow.link(realm) == before  # unchanged: same tenant, status and tokens
    refused = [e for e in logs if e["event"] == "qbo.connect.refused"]
    assert [e["reason"] for e in refused] == ["state_used"]
    assert callback.split("state=")[1].split("&")[0] not in str(logs) and cookie not in str(logs)


async def test_a_state_from_another_browser_links_nothing(flow, api_tenant, pool):
    """Login CSRF: the attacker starts a flow for their tenant and lures the victim into
    consenting with the attacker's state; the victim's browser has no (or another) cookie."""
    _, victim_headers = api_tenant
    attacker, attacker_headers = await make_api_tenant(pool, "Mallory")
    realm = await flow.new_realm()
    async with flow.browser() as mallory, flow.browser() as victim:
        authorize = await flow.start(mallory, attacker_headers)
        status, page = await flow.finish(victim, await flow.consent(victim, authorize, realm))
        assert status == 403 and "not started from this browser" in page
        assert await flow.link(realm) is None
        assert await flow.nonce_used(authorize) is None
        # the victim had started a flow of their own: a cookie, not the state's
        await flow.start(victim, victim_headers)
        status, _ = await flow.finish(victim, await flow.consent(victim, authorize, realm))
        assert status == 403
        assert await flow.link(realm) is None
    assert not await pool.fetchval("SELECT count(*) FROM qbo_connections WHERE tenant_id = $1", attacker)


async def test_an_expired_state_links_nothing(flow, api_tenant, monkeypatch):
    _, headers = api_tenant
    realm = await flow.new_realm()
    monkeypatch.setattr(state_module, "TTL", 1)
    async with flow.browser() as browser:
        callback = await flow.consent(browser, await flow.start(browser, headers), realm)
        await asyncio.sleep(1.2)
        status, page = await flow.finish(browser, callback)
    assert status == 400 and "expired" in page
    assert await flow.link(realm) is None
    assert await flow.nonce_used(callback) is None


async def test_a_forged_state_links_nothing(flow, api_tenant, pool):
    _, headers = api_tenant
    victim_realm = await flow.new_realm()
    other, _ = await make_api_tenant(pool, "Other")
    async with flow.browser() as browser:
        callback = await flow.consent(browser, await flow.start(browser, headers), victim_realm)
        state = parse_qs(urlsplit(callback).query)["state"][0]
        payload, mac = state.split(".")
        cookie = flow.cookie(browser)
        # signed with a guessed secret, for the attacker's tenant and this browser's cookie
        wrong = make_state(other, new_secret(), digest(cookie), b"guess" * 10)
        # the genuine payload with a tampered signature
        for forged in (wrong, f"{payload}.{mac[:-2]}AA"):
            status, page = await flow.finish(browser, callback.replace(state, forged))
            assert status == 403 and "not issued by Partsemble" in page
    assert await flow.link(victim_realm) is None
    assert await flow.nonce_used(callback) is None


async def test_a_company_of_another_tenant_is_refused_and_keeps_its_link(flow, api_tenant, pool):
    tenant, headers = api_tenant
    owner, owner_headers = await make_api_tenant(pool, "Owner")
    realm = await flow.new_realm()
    async with flow.browser() as browser:
        assert (await flow.connect(browser, owner_headers, realm))[0] == 200
    before = await flow.link(realm)
    async with flow.browser() as browser:
        callback = await flow.consent(browser, await flow.start(browser, headers), realm)
        status, page = await flow.finish(browser, callback)
    assert status == 409
    assert "connected to another Partsemble account; disconnect it there first" in page
    assert await flow.link(realm) == before and before["tenant_id"] == owner
    assert await flow.nonce_used(callback) is not None  # spent: this state cannot try again
    assert not await pool.fetchval("SELECT count(*) FROM qbo_connections WHERE tenant_id = $1", tenant)


async def test_denied_consent_links_nothing_and_echoes_nothing(flow, api_tenant):
    _, headers = api_tenant
    realm = await flow.new_realm()
    async with flow.browser() as browser:
        callback = await flow.consent(browser, await flow.start(browser, headers), realm, deny=True)
        assert "error=access_denied" in callback
        status, page = await flow.finish(browser, callback)
        assert status == 400 and "cancelled" in page
        injected = callback.replace("access_denied", "%3Cscript%3Ealert(1)%3C/script%3E")
        status, page = await flow.finish(browser, injected)
        assert status == 400 and "<script" not in page and "alert" not in page
    assert await flow.link(realm) is None
    assert await flow.nonce_used(callback) is None


async def test_connect_needs_an_api_key(flow):
    async with (
        flow.browser() as browser,
        browser.get(f"{flow.base}/oauth/quickbooks/connect", allow_redirects=False) as response,
    ):
        assert response.status == 401
        assert COOKIE not in response.cookies


async def test_cookie_is_secure_behind_https(flow, api_tenant):
    _, headers = api_tenant
    async with (
        flow.browser() as browser,
        browser.get(
            f"{flow.base}/oauth/quickbooks/connect",
            allow_redirects=False,
            headers={**headers, "X-Forwarded-Proto": "https"},
        ) as response,
    ):
        assert response.status == 302
        assert response.cookies[COOKIE]["secure"]


async def test_the_callbacks_statements_hold_under_row_level_security():
    """As the service role (no superuser, no BYPASSRLS), in a database of its own: a
    tenant sees and spends only its own states, learns another tenant owns a realm only
    through qbo_realm_tenant(), and cannot take that realm over (the upsert is refused)."""
    from datetime import datetime

    import asyncpg

    from services.ingest.qbo.repository import QboRepository
    from shared.db import create_pool, tenant_transaction
    from shared.migrate import recreate_database

    owner_url = URL(TEST_DATABASE_URL)
    owner_url = owner_url.with_path(owner_url.path + "_rls")
    service_url = owner_url.with_user("partsemble_connect_test").with_password(None)
    await recreate_database(str(owner_url), str(service_url))
    owner = await asyncpg.connect(str(owner_url))
    pool = await create_pool(str(service_url))
    try:
        mine, theirs = uuid.uuid4(), uuid.uuid4()
        for tenant in (mine, theirs):
            await owner.execute("INSERT INTO tenants (id, name, home_currency) VALUES ($1, 'x', 'USD')", tenant)
        await owner.execute(
            "INSERT INTO qbo_connections (realm_id, tenant_id, access_token, refresh_token, "
            "access_expires_at) VALUES ('R', $1, 'a', 'r', now())",
            theirs,
        )
        async with tenant_transaction(pool, theirs) as conn:
            await conn.execute(qbo_routes.INSERT_STATE, b"theirs", theirs, b"browser", 2_000_000_000, None)
        async with tenant_transaction(pool, mine) as conn:
            await conn.execute(qbo_routes.INSERT_STATE, b"mine", mine, b"browser", 2_000_000_000, None)
            assert await conn.fetchval("SELECT count(*) FROM oauth_states") == 1
            assert await conn.fetchval("SELECT count(*) FROM qbo_connections") == 0
            assert await conn.fetchval(qbo_routes.CONSUME_STATE, b"theirs", b"browser") is None
            assert await conn.fetchval(qbo_routes.CONSUME_STATE, b"mine", b"browser") == mine
            assert await conn.fetchval(qbo_routes.CONSUME_STATE, b"mine", b"browser") is None
            assert await conn.fetchval(qbo_routes.REALM_TENANT, "R") == theirs
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await QboRepository(conn).upsert_connection("R", mine, b"x", b"y", datetime.now(UTC))
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(qbo_routes.INSERT_STATE, b"forged", theirs, b"browser", 2_000_000_000, None)
        assert await owner.fetchval("SELECT tenant_id FROM qbo_connections WHERE realm_id = 'R'") == theirs
        assert await owner.fetchval("SELECT used_at FROM oauth_states WHERE nonce_hash = 'theirs'") is None
    finally:
        await pool.close()
        await owner.close()


async def test_a_malformed_realm_id_links_nothing(flow, api_tenant):
    _, headers = api_tenant
    realm = await flow.new_realm()
    async with flow.browser() as browser:
        callback = await flow.consent(browser, await flow.start(browser, headers), realm)
        status, page = await flow.finish(browser, callback.replace(f"realmId={realm}", "realmId=1%00%3Cb%3E"))
    assert status == 400 and "<b>" not in page
    assert await flow.link(realm) is None
    assert await flow.nonce_used(callback) is None
