"""Access tokens per account, for every provider: stored encrypted (AES-GCM, the account id
as associated data), cached, refreshed when (nearly) expired or rejected, once however many
callers (and processes) ask at once, always keeping the newest refresh token."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from services.ingest.channels.provider import ReconnectRequired, Tokens
from services.ingest.channels.repository import ChannelRepository
from services.ingest.channels.tokens_crypto import TokenCipher
from shared.db import Connection, set_tenant
from shared.logging import get_logger

log = get_logger("channels.tokens")
EARLY = timedelta(seconds=60)  # refresh this long before the access token expires


class Refresher(Protocol):
    async def refresh(self, refresh_token: str) -> Tokens: ...


class TokenStore:
    """Access tokens per account of one provider."""

    def __init__(
        self, pool: asyncpg.Pool, cipher: TokenCipher, oauth: Refresher, provider: str = "quickbooks", key: str = "qbo"
    ):
        self.pool = pool
        self.provider = provider
        self.key = key
        self.cipher = cipher
        self.oauth = oauth
        self._cache: dict[str, tuple[str, datetime]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def save(self, conn: Connection, realm_id: str, tenant_id: uuid.UUID, tokens: Tokens) -> bool:
        """Link a realm to a tenant with fresh tokens; False if the realm belongs to another tenant."""
        linked = await ChannelRepository(conn, self.provider).upsert_connection(
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
        """The refresh under the account's row lock; None when the provider refused the refresh
        token (the connection is then marked ``reconnect_required`` in this committed transaction)."""
        async with self.pool.acquire() as conn, conn.transaction():
            repo = ChannelRepository(conn, self.provider)
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
                log.error(f"{self.key}.oauth.reconnect_required", realm=realm_id)
                return None
            await repo.store_tokens(
                realm_id,
                self.cipher.encrypt(tokens.access_token, realm_id),
                self.cipher.encrypt(tokens.refresh_token, realm_id),
                tokens.expires_at,
            )
            log.info(f"{self.key}.oauth.refreshed", realm=realm_id)
            self._cache[realm_id] = (tokens.access_token, tokens.expires_at)
            return tokens.access_token
