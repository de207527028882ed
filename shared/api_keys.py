"""Tenant API keys: ``psk_<prefix>_<secret>``. Only a SHA-256 of the whole key is
stored (the key is 256 random bits, so a slow hash adds nothing); the prefix
finds the row and identifies the key to people. Comparison is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

FIND_KEY = """
SELECT k.tenant_id, k.key_hash FROM api_keys k WHERE k.prefix = $1 AND k.revoked_at IS NULL"""
INSERT_KEY = "INSERT INTO api_keys (id, tenant_id, prefix, key_hash) VALUES ($1, $2, $3, $4)"
LIST_KEYS = "SELECT id, prefix, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at"
REVOKE_KEY = "UPDATE api_keys SET revoked_at = now() WHERE (id::text = $1 OR prefix = $1) AND revoked_at IS NULL RETURNING id"


@dataclass(frozen=True)
class NewKey:
    id: uuid.UUID
    prefix: str
    key: str


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _prefix(key: str) -> str | None:
    parts = key.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "psk" and parts[1] and parts[2] else None


async def create_key(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> NewKey:
    prefix = secrets.token_hex(6)
    key = f"psk_{prefix}_{secrets.token_urlsafe(32)}"
    key_id = uuid.uuid4()
    await conn.execute(INSERT_KEY, key_id, tenant_id, prefix, _hash(key))
    return NewKey(key_id, prefix, key)


async def tenant_for_key(pool: asyncpg.Pool, key: str) -> uuid.UUID | None:
    """The tenant of a live key, or None (unknown, malformed or revoked)."""
    if not key.isascii():  # keys are ASCII; a header's non-UTF-8 bytes arrive as lone surrogates
        return None
    prefix = _prefix(key)
    if prefix is None:
        return None
    row = await pool.fetchrow(FIND_KEY, prefix)
    if row is None or not hmac.compare_digest(row["key_hash"], _hash(key)):
        return None
    return row["tenant_id"]


async def list_keys(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(LIST_KEYS, tenant_id)


async def revoke_key(conn: asyncpg.Connection, key_id_or_prefix: str) -> bool:
    return await conn.fetchval(REVOKE_KEY, key_id_or_prefix) is not None
