"""OAuth 2.0 with Intuit: code exchange, refresh (single flight per realm, newest
refresh token always stored), revoke. Tokens are encrypted at rest and never logged."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from services.ingest.qbo.repository import QboRepository
from services.ingest.qbo.tokens_crypto import TokenCipher
from shared.db import Connection, set_tenant
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("qbo.oauth")
EARLY = timedelta(seconds=60)  # refresh this long before the access token expires


class ReconnectRequired(Exception):
    """The realm's refresh token is no longer accepted: a person must reconnect."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


class OAuthClient:
    """Talks to Intuit's token endpoints."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings):
        self.session = session
        self.settings = settings

    def _headers(self) -> dict[str, str]:
        basic = aiohttp.encode_basic_auth(self.settings.qbo_client_id or "", self.settings.qbo_client_secret or "")
        return {"Accept": "application/json", "Authorization": basic}

    async def _token_call(self, form: dict[str, str]) -> Tokens:
        async with self.session.post(self.settings.qbo_oauth_token_url, data=form, headers=self._headers()) as response:
            body = await response.json(content_type=None)
            if response.status == 400 and body.get("error") == "invalid_grant":
                raise ReconnectRequired("invalid_grant")
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    (),
                    status=response.status,
                    message=f"token endpoint: {body.get('error', response.status)}",
                )
        return Tokens(
            body["access_token"],
            body["refresh_token"],
            datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in", 3600))),
        )

    async def exchange_code(self, code: str) -> Tokens:
        return await self._token_call(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.qbo_redirect_uri}
        )

    async def refresh(self, refresh_token: str) -> Tokens:
        return await self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, token: str) -> None:
        async with self.session.post(
            self.settings.qbo_oauth_revoke_url, json={"token": token}, headers=self._headers()
        ) as response:
            if response.status >= 400:
                log.warning("qbo.oauth.revoke_failed", status=response.status)


class TokenStore:
    """Access tokens per realm: cached, refreshed when (nearly) expired or rejected."""

    def __init__(self, pool: asyncpg.Pool, cipher: TokenCipher, oauth: OAuthClient):
        self.pool = pool
        self.cipher = cipher
        self.oauth = oauth
        self._cache: dict[str, tuple[str, datetime]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def save(self, conn: Connection, realm_id: str, tenant_id: uuid.UUID, tokens: Tokens) -> bool:
        """Link a realm to a tenant with fresh tokens; False if the realm belongs to another tenant."""
        linked = await QboRepository(conn).upsert_connection(
            realm_id,
            tenant_id,
            self.cipher.encrypt(tokens.access_token, realm_id),
            self.cipher.encrypt(tokens.refresh_token, realm_id),
            tokens.expires_at,
        )
        self._cache.pop(realm_id, None)
        return linked

    async def access_token(self, realm_id: str) -> str:
        cached = self._cache.get(realm_id)
        if cached and cached[1] - EARLY > datetime.now(UTC):
            return cached[0]
        return await self.refresh(realm_id, stale=cached[0] if cached else None, only_if_expired=True)

    async def refresh(self, realm_id: str, stale: str | None, only_if_expired: bool = False) -> str:
        """Refresh once however many callers ask at once: the row lock makes the other
        callers (and processes) wait, then they find the new token and use it."""
        lock = self._locks.setdefault(realm_id, asyncio.Lock())
        async with lock:
            token = await self._refresh_locked(realm_id, stale, only_if_expired)
        if token is None:  # refused: the status change is committed, then the callers learn it
            raise ReconnectRequired("invalid_grant")
        return token

    async def _refresh_locked(self, realm_id: str, stale: str | None, only_if_expired: bool) -> str | None:
        """The refresh under the realm's row lock; None when Intuit refused the refresh token
        (the connection is then marked ``reconnect_required`` in this committed transaction)."""
        async with self.pool.acquire() as conn, conn.transaction():
            repo = QboRepository(conn)
            owner = await repo.realm_tenant(realm_id)
            if owner is None:
                raise ReconnectRequired(f"realm {realm_id} is not connected")
            await set_tenant(conn, owner["tenant_id"])
            row = await repo.connection(realm_id, lock=True)
            if row is None or row["status"] != "connected":
                raise ReconnectRequired(f"realm {realm_id} is not connected")
            current = self.cipher.decrypt(row["access_token"], realm_id)
            fresh_enough = row["access_expires_at"] - EARLY > datetime.now(UTC)
            if fresh_enough and (only_if_expired or current != stale):
                self._cache[realm_id] = (current, row["access_expires_at"])
                return current
            try:
                tokens = await self.oauth.refresh(self.cipher.decrypt(row["refresh_token"], realm_id))
            except ReconnectRequired:
                # Not raised from here: that would roll the status back with the transaction.
                await repo.set_status(realm_id, "reconnect_required")
                self._cache.pop(realm_id, None)
                log.error("qbo.oauth.reconnect_required", realm=realm_id)
                return None
            await repo.store_tokens(
                realm_id,
                self.cipher.encrypt(tokens.access_token, realm_id),
                self.cipher.encrypt(tokens.refresh_token, realm_id),
                tokens.expires_at,
            )
            log.info("qbo.oauth.refreshed", realm=realm_id)
            self._cache[realm_id] = (tokens.access_token, tokens.expires_at)
            return tokens.access_token
