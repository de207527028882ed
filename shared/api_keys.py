"""Tenant API keys: ``psk_<prefix>_<secret>``. Only a SHA-256 of the whole key is
stored (the key is 256 random bits, so a slow hash adds nothing); the prefix
finds the row and identifies the key to people. Comparison is constant-time.

A key may expire (``expires_at``; NULL: never). Authentication happens before any tenant
is known, so under row-level security it reads through the SECURITY DEFINER function
``api_key_lookup`` (shared/migrations/0020_api_key_expiry.sql), which returns the live key
of a prefix only: not revoked, not expired. Everything else (creating, listing, revoking,
recording use) runs in the key's tenant scope."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from shared.db import set_tenant, tenant_transaction
from shared.logging import get_logger

log = get_logger("api_keys")

FIND_KEY = "SELECT id, tenant_id, key_hash, expires_at, sales_tracking FROM api_key_lookup($1)"
INSERT_KEY = "INSERT INTO api_keys (id, tenant_id, prefix, key_hash) VALUES ($1, $2, $3, $4)"
INSERT_EXPIRING_KEY = "INSERT INTO api_keys (id, tenant_id, prefix, key_hash, expires_at) VALUES ($1, $2, $3, $4, $5)"
LIST_KEYS = """
SELECT id, prefix, created_at, expires_at, last_used_at, revoked_at FROM api_keys WHERE tenant_id = $1
ORDER BY created_at, id"""
REVOKE_KEY = """
UPDATE api_keys SET revoked_at = now() WHERE (id::text = $1 OR prefix = $1) AND revoked_at IS NULL RETURNING id"""
#: Records a use; a no-op (no row written) when another process recorded one within the interval.
TOUCH_KEY = """
UPDATE api_keys SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))"""

#: What a key can look like: ASCII letters, digits, '_' and '-' only, of a sane length. Anything
#: else (non-ASCII, control characters, undecodable bytes kept as surrogates) is no key, and is
#: refused before it reaches hashing or the database.
_KEY_SHAPE = re.compile(r"psk_([A-Za-z0-9]{1,64})_[A-Za-z0-9_-]{1,200}", re.ASCII)


@dataclass(frozen=True)
class NewKey:
    id: uuid.UUID
    prefix: str
    key: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class KeyMatch:
    """A live key that authenticated: its id (for rate limits and usage), tenant, and whether
    that tenant is entitled to sales tracking (Advanced plan, receiving enabled; read with
    the key, 0023_tenant_plans.sql, so the check costs no query of its own)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    sales_tracking: bool = True


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _prefix(key: str) -> str | None:
    match = _KEY_SHAPE.fullmatch(key) if isinstance(key, str) else None
    return match.group(1) if match else None


def bearer_key(authorization: bytes | str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` value, or None. Total: any input,
    including bytes that are not UTF-8 (or str holding surrogate escapes, as aiohttp
    decodes such headers), gives a key or None, never an exception."""
    if authorization is None:
        return None
    try:
        if isinstance(authorization, bytes):
            text = authorization.decode("ascii")
        else:
            text = authorization
            text.encode("ascii")  # surrogate escapes (undecodable bytes) and non-ASCII fail here
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
    scheme, _, key = text.strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and _prefix(key) is not None else None


def expiry_in_days(days: float | None) -> datetime | None:
    return None if days is None else datetime.now(UTC) + timedelta(days=days)


async def create_key(conn: asyncpg.Connection, tenant_id: uuid.UUID, expires_at: datetime | None = None) -> NewKey:
    """A new key of the tenant (``expires_at``: None never expires). Correct under row-level
    security: in a transaction scoped to the tenant (the caller's, or one of its own)."""
    prefix = secrets.token_hex(6)
    key = f"psk_{prefix}_{secrets.token_urlsafe(32)}"
    key_id = uuid.uuid4()
    async with conn.transaction():
        await set_tenant(conn, tenant_id)
        await conn.execute(INSERT_EXPIRING_KEY, key_id, tenant_id, prefix, _hash(key), expires_at)
    return NewKey(key_id, prefix, key, expires_at)


async def lookup_key(pool: asyncpg.Pool, key: str) -> KeyMatch | None:
    """The live key matching ``key``, or None (unknown, malformed, revoked or expired)."""
    prefix = _prefix(key)
    if prefix is None:
        return None
    row = await pool.fetchrow(FIND_KEY, prefix)
    if row is None or not hmac.compare_digest(row["key_hash"], _hash(key)):
        return None
    return KeyMatch(row["id"], row["tenant_id"], row["sales_tracking"])


class KeyCache:
    """The live keys this process authenticated within the last ``ttl`` seconds (by prefix,
    with the hash and expiry they were read with), so a busy client's requests skip the
    lookup round trip. Only keys of entitled tenants are kept. A cached key is checked
    again by every unit of work of the request, in its first statement (``shared.db.
    CACHED_KEY``, ``api_key_check``): a revoked key or a downgraded tenant is refused at
    once, and the entry dropped (``evict``). Memory: the keys used within ``ttl``."""

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, bytes, datetime | None, KeyMatch]] = {}
        self._swept = clock()
        #: Lookups that went to the database (tests and metrics).
        self.misses = 0

    async def lookup(self, pool: asyncpg.Pool, key: str) -> tuple[KeyMatch | None, bool]:
        """(the live key matching ``key`` or None, whether it came from the cache)."""
        prefix = _prefix(key)
        if prefix is None:
            return None, False
        now = self._clock()
        entry = self._entries.get(prefix)
        if entry is not None and now - entry[0] < self.ttl:
            _, key_hash, expires_at, match = entry
            if hmac.compare_digest(key_hash, _hash(key)) and (expires_at is None or expires_at > datetime.now(UTC)):
                return match, True
        self.misses += 1
        row = await pool.fetchrow(FIND_KEY, prefix)
        if row is None or not hmac.compare_digest(row["key_hash"], _hash(key)):
            self._entries.pop(prefix, None)
            return None, False
        match = KeyMatch(row["id"], row["tenant_id"], row["sales_tracking"])
        if match.sales_tracking and self.ttl > 0:
            self._sweep(now)
            self._entries[prefix] = (now, row["key_hash"], row["expires_at"], match)
        else:
            self._entries.pop(prefix, None)
        return match, False

    def evict(self, key: str) -> None:
        prefix = _prefix(key)
        if prefix is not None:
            self._entries.pop(prefix, None)

    def _sweep(self, now: float) -> None:
        if now - self._swept < self.ttl:
            return
        self._swept = now
        for prefix in [p for p, e in self._entries.items() if now - e[0] >= self.ttl]:
            del self._entries[prefix]


async def tenant_for_key(pool: asyncpg.Pool, key: str) -> uuid.UUID | None:
    """The tenant of a live key, or None (unknown, malformed, revoked or expired)."""
    match = await lookup_key(pool, key)
    return match.tenant_id if match else None


async def list_keys(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> list[asyncpg.Record]:
    """The tenant's keys, oldest first: id, prefix, created_at, expires_at, last_used_at, revoked_at."""
    async with conn.transaction():
        await set_tenant(conn, tenant_id)
        return await conn.fetch(LIST_KEYS, tenant_id)


async def revoke_key(conn: asyncpg.Connection, key_id_or_prefix: str) -> bool:
    return await conn.fetchval(REVOKE_KEY, key_id_or_prefix) is not None


class KeyUsage:
    """Records when each key was last used (``api_keys.last_used_at``), at most once per
    ``interval`` seconds per key per process, so authentication adds no write per request.

    Strategy: an in-process memo of when this process last recorded each key; past the
    interval, one UPDATE in the key's own tenant-scoped transaction
    (``shared.db.tenant_transaction``), which row-level security permits without any
    SECURITY DEFINER function. The UPDATE is conditional on the stored time being older
    than the interval too, so several processes together still write about once per
    interval per key. The recorded time is thus accurate to about a minute. A failed write
    is logged (never with the key) and does not fail the request.

    The memo holds the keys recorded within the last interval only (older entries are
    swept), so its size is bounded by the keys in active use."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._recorded: dict[uuid.UUID, float] = {}
        self._swept = clock()
        #: Writes issued by this process (tests and metrics).
        self.writes = 0

    def due(self, key_id: uuid.UUID) -> bool:
        last = self._recorded.get(key_id)
        return last is None or self._clock() - last >= self.interval

    async def touch(self, pool: asyncpg.Pool, key: KeyMatch) -> None:
        now = self._clock()
        if not self.due(key.id):
            return
        self._recorded[key.id] = now  # before the await: concurrent requests do not write too
        self._sweep(now)
        try:
            async with tenant_transaction(pool, key.tenant_id) as conn:
                self.writes += 1
                await conn.execute(TOUCH_KEY, key.id, self.interval)
        except Exception as exc:
            self._recorded.pop(key.id, None)
            log.warning("api_key.touch_failed", key_id=str(key.id), error=type(exc).__name__)

    def _sweep(self, now: float) -> None:
        if now - self._swept < self.interval:
            return
        self._swept = now
        for key_id in [k for k, t in self._recorded.items() if now - t >= self.interval]:
            del self._recorded[key_id]


class RateLimiter:
    """Token buckets per key, per process: each key may spend ``burst`` requests at once
    and gets ``per_minute`` back per minute. ``per_minute`` 0 disables the limit.

    Only keys that authenticated get a bucket. A bucket idle long enough to have refilled
    is the same as a new one, so the sweep (at most once per refill time) drops it:
    memory is bounded by the keys active within the last refill time."""

    def __init__(self, per_minute: int, burst: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else per_minute)
        self._clock = clock
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._refill_seconds = self.capacity / self.rate if self.rate > 0 else 0.0
        self._swept = clock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.capacity >= 1

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, key_id: uuid.UUID) -> float:
        """0 if the request may go ahead (one token spent), else seconds until it may."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        self._sweep(now)
        tokens, at = self._buckets.get(key_id, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key_id] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key_id] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        if now - self._swept < max(self._refill_seconds, 1.0):
            return
        self._swept = now
        full = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.capacity]
        for key_id in full:
            del self._buckets[key_id]
