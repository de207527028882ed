"""Rotating TOKEN_ENCRYPTION_KEY (docs/security.md): the stored OAuth tokens are
re-encrypted under the new key while the old one still decrypts, and afterwards the new
key alone reads them; the connect page that starts the flow in a browser."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from services.ingest.qbo import admin as qbo_admin
from services.ingest.qbo.tokens_crypto import TokenCipher
from shared.secrets import token_keys
from tests.conftest import client_for, make_api_tenant, settings_for


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def _stored(pool, realm: str) -> tuple[bytes, bytes]:
    row = await pool.fetchrow("SELECT access_token, refresh_token FROM qbo_connections WHERE realm_id = $1", realm)
    return bytes(row["access_token"]), bytes(row["refresh_token"])


async def test_rotation_re_encrypts_every_token_under_the_new_key(pool, database_url):
    old, new = _key(), _key()
    realms = [f"rot-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    async with pool.acquire() as conn:
        for n, realm in enumerate(realms):
            tenant_id, _headers = await make_api_tenant(pool, f"Rotating {n}")
            assert await qbo_admin.connect_quickbooks(
                conn,
                settings_for(database_url, "unused", token_encryption_key=old),
                tenant_id,
                realm,
                f"access-{n}",
                f"refresh-{n}",
                3600,
            )
    before = {realm: await _stored(pool, realm) for realm in realms}
    rotating = settings_for(database_url, "unused", token_encryption_key=new, token_encryption_old_keys=old)
    await _check_rotation(pool, rotating, realms, before, old, new)


async def _check_rotation(pool, rotating, realms, before, old, new) -> None:
    async with pool.acquire() as conn:  # this test's realms: other tests' stay under the run's key
        rewritten, current = await qbo_admin.rotate_token_key(conn, rotating, realms)
    assert (rewritten, current) == (len(realms), 0)

    only_new = TokenCipher(token_keys(new))
    only_old = TokenCipher(token_keys(old))
    for n, realm in enumerate(realms):
        access, refresh = await _stored(pool, realm)
        assert (access, refresh) != before[realm]
        assert only_new.decrypt(access, realm) == f"access-{n}"
        assert only_new.decrypt(refresh, realm) == f"refresh-{n}"
        with pytest.raises(Exception, match="no configured TOKEN_ENCRYPTION_KEY"):
            only_old.decrypt(access, realm)

    async with pool.acquire() as conn:  # run again: nothing left to do
        rewritten, current = await qbo_admin.rotate_token_key(conn, rotating, realms)
    assert (rewritten, current) == (0, len(realms))


async def test_rotation_without_the_old_key_changes_nothing(pool, database_url):
    old = _key()
    realm = f"rot-{uuid.uuid4().hex[:8]}"
    tenant_id, _headers = await make_api_tenant(pool, "Rotating without")
    async with pool.acquire() as conn:
        await qbo_admin.connect_quickbooks(
            conn,
            settings_for(database_url, "unused", token_encryption_key=old),
            tenant_id,
            realm,
            "access",
            "refresh",
            3600,
        )
    before = await _stored(pool, realm)
    async with pool.acquire() as conn:
        with pytest.raises(Exception, match="no configured TOKEN_ENCRYPTION_KEY"):
            await qbo_admin.rotate_token_key(
                conn, settings_for(database_url, "unused", token_encryption_key=_key()), [realm]
            )
    assert await _stored(pool, realm) == before  # one transaction: all or nothing


async def test_the_start_page_begins_the_flow_in_the_browser(pool, database_url, broker_prefix):
    from services.ingest.app import create_app

    client = await client_for(create_app(settings_for(database_url, broker_prefix)))
    try:
        page = await client.get("/oauth/quickbooks/start")
        assert page.status == 200 and page.content_type == "text/html"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["Cache-Control"] == "no-store"
        assert 'src="/oauth/quickbooks/start.js"' in await page.text()
        script = await client.get("/oauth/quickbooks/start.js")
        assert script.status == 200 and 'Accept: "application/json"' in await script.text()
    finally:
        await client.close()
