"""Database access shared by the services: pool creation, error translation and
the transient-error retry wrapper. SQL itself lives in each service's repository."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from decimal import Decimal
from typing import TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.aio import random_fraction
from shared.startup import check_service_role

T = TypeVar("T")


#: A connection of its own or one borrowed from a pool (asyncpg's proxy of the pool's connection).
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


class TransientError(Exception):
    """Worth retrying: deadlock, serialization failure, lock or statement timeout."""


class UnavailableError(TransientError):
    """The database cannot be reached (connection lost or refused, shutting down)."""


class ConflictError(Exception):
    """A unique constraint refused the write."""


class BadInputError(Exception):
    """The database refused a value (a text it cannot store, a number out of range)."""


# 57014: a statement cancelled (statement_timeout under load, pg_cancel_backend): worth a few
# attempts like contention, then dead-lettered with the reason (docs/reliability.md S8).
_CONTENTION_SQLSTATES = {"40001", "40P01", "55P03", "57014"}
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "08000", "08003", "08006", "53300"}
# Data exceptions (class 22): a value the database cannot store; the caller's input is at fault.
_BAD_INPUT_CLASS = "22"


def translate(exc: BaseException) -> BaseException:
    """Map asyncpg/OS errors to the project's few error kinds."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and sqlstate in _CONTENTION_SQLSTATES:
        return TransientError(f"{type(exc).__name__}: {exc}")
    # InternalClientError: asyncpg found its connection mid-operation, e.g. resetting a pooled
    # connection the server had just terminated (the pool discards it; a retry gets another).
    if (isinstance(exc, asyncpg.PostgresError) and sqlstate in _UNAVAILABLE_SQLSTATES) or isinstance(
        exc,
        (
            asyncpg.InterfaceError,
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.InternalClientError,
            ConnectionError,
            OSError,
            asyncio.TimeoutError,
        ),
    ):
        return UnavailableError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return ConflictError(str(exc))
    if isinstance(exc, asyncpg.PostgresError) and str(sqlstate or "").startswith(_BAD_INPUT_CLASS):
        return BadInputError(f"a value cannot be stored: {exc}")
    return exc


async def retry_transient(
    fn: Callable[[], Awaitable[T]],
    attempts: int,
    on_retry: Callable[[int, BaseException], None] | None = None,
    unavailable_for: float = 300.0,
) -> T:
    """Run fn, retrying transient errors with jittered exponential backoff: contention
    up to ``attempts`` times, an unreachable database for up to ``unavailable_for`` s."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except Exception as exc:
            err = translate(exc)
            retry = isinstance(err, UnavailableError) and loop.time() - started < unavailable_for
            retry = retry or (type(err) is TransientError and attempt < attempts)
            if not retry:
                if err is exc:
                    raise
                raise err from exc
            if on_retry:
                on_retry(attempt, err)
            jitter = 0.5 + random_fraction()
            await asyncio.sleep(min(5.0, 0.02 * 2 ** min(attempt, 10)) * jitter)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # numeric <-> Decimal is asyncpg's default; jsonb as Python objects, with Decimal kept exact.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: json.dumps(v, default=str),
        decoder=lambda s: json.loads(s, parse_float=Decimal),
    )


async def create_service_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 10,
    reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """A service's pool: refuses (StartupError) a role that row-level security would not bind."""
    pool = await create_pool(dsn, min_size, max_size, reset)
    try:
        await check_service_role(pool)
    except BaseException:
        await pool.close()
        raise
    return pool


async def create_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 10,
    reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """``reset``: what a released connection runs besides rolling back an open
    transaction (default: asyncpg's reset query, one more round trip per release)."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=reset)


# --- Tenant scope (row-level security, shared/migrations/0017_row_level_security.sql) -------


#: The API key a request authenticated with from the HTTP services' key cache (set by
#: ``shared.web.auth_middleware`` for the request's task; None elsewhere): every unit of
#: work the request opens checks it is still live in its first statement.
CACHED_KEY: ContextVar[uuid.UUID | None] = ContextVar("cached_key", default=None)


def tenant_setting_sql(tenant_id: uuid.UUID | str) -> str:
    """The statement that scopes the current transaction to one tenant, as text, for a
    caller that sends it together with other statements in one round trip. The value is
    a canonical UUID (``uuid.UUID`` refuses anything else), so it is safe as a literal.
    In a request authenticated from the key cache it also checks, in the same statement,
    that the key is still live and its tenant entitled (``api_key_check``, migration 0027:
    SQLSTATE 28000 otherwise), so a revocation takes effect at once."""
    scope = f"SELECT set_config('app.tenant_id', '{uuid.UUID(str(tenant_id))}', true)"
    key = CACHED_KEY.get()
    return scope if key is None else f"{scope}, api_key_check('{uuid.UUID(str(key))}')"


async def set_tenant(conn: Connection, tenant_id: uuid.UUID | str) -> None:
    """Scope the open transaction to ``tenant_id``: row-level security then shows and
    accepts that tenant's rows only, until the transaction ends."""
    if not conn.is_in_transaction():
        raise RuntimeError("set_tenant needs an open transaction (the setting is transaction-local)")
    await conn.execute(tenant_setting_sql(tenant_id))


@contextlib.asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, tenant_id: uuid.UUID | str, **transaction: object
) -> AsyncIterator[Connection]:
    """A pooled connection in a transaction scoped to one tenant: the unit of work of
    every service. ``transaction`` passes asyncpg's options (isolation, readonly)."""
    async with pool.acquire() as conn, conn.transaction(**transaction):  # type: ignore[arg-type]  # asyncpg options as given
        await set_tenant(conn, tenant_id)
        yield conn


@contextlib.asynccontextmanager
async def scoped_transaction(pool: asyncpg.Pool, begin_sql: str) -> AsyncIterator[Connection]:
    """A pooled connection in a transaction that ``begin_sql`` opens and scopes in one round
    trip (``BEGIN …; SELECT set_config(…)``, ``tenant_setting_sql``). Ended by COMMIT, or
    ROLLBACK when the body raised. The body must not open ``conn.transaction()`` (asyncpg
    refuses it inside a transaction it did not start)."""
    async with pool.acquire() as conn:
        await conn.execute(begin_sql)
        try:
            yield conn
        except BaseException:
            if not conn.is_closed():
                with contextlib.suppress(Exception):  # the connection is reset on release anyway
                    await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


def tenant_write(pool: asyncpg.Pool, tenant_id: uuid.UUID | str) -> contextlib.AbstractAsyncContextManager[Connection]:
    """A read-write transaction scoped to one tenant in one round trip (``tenant_transaction``
    takes two): the ingest API's writes."""
    return scoped_transaction(pool, f"BEGIN; {tenant_setting_sql(tenant_id)}")


def tenant_read(pool: asyncpg.Pool, tenant_id: uuid.UUID | str) -> contextlib.AbstractAsyncContextManager[Connection]:
    """A read-only repeatable-read transaction scoped to one tenant in one round trip (the
    reads of the query service: three round trips a request, not four), so a view of
    several statements reads one snapshot."""
    return scoped_transaction(pool, f"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {tenant_setting_sql(tenant_id)}")
