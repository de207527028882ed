"""Forward-only SQL migrations: ``shared/migrations/NNNN_name.sql`` applied in order,
each once, recorded in ``schema_migrations``, under an advisory lock so that
several processes starting together apply them once.

``python -m shared.migrate`` connects with DATABASE_OWNER_URL (the schema owner),
creates the database if it is missing, applies what is new, and then makes sure the
role named in DATABASE_URL exists and may do what the services do and no more: it is
no superuser, has no BYPASSRLS and owns nothing, so row-level security applies to
every statement it runs (docs/security.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from yarl import URL

from shared.logging import configure, get_logger
from shared.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x5A1E5  # advisory lock id: serializes concurrent migration runs

#: Migrations whose file was renamed after databases had recorded them: old name -> new
#: name. A database that recorded the old name has applied the migration; it records the
#: new name instead of applying it a second time.
RENAMED = {
    "0011_relay_room.sql": "0011_recost_room.sql",  # "relay" is the outbox relay's word (issue 17)
}

log = get_logger("migrate")


async def create_database(dsn: str) -> bool:
    """Create the database of ``dsn`` if missing (connects to ``postgres``). True if created."""
    url = URL(dsn)
    name = url.path.lstrip("/")
    admin_dsn = str(url.with_path("/postgres"))
    conn = await asyncpg.connect(admin_dsn)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')  # name from settings, never from input
        return True
    finally:
        await conn.close()


async def recreate_database(dsn: str, service_dsn: str | None = None) -> None:
    """Drop the database of ``dsn`` (closing its sessions) and create it migrated: for
    tests and benchmarks, which each work in a database of their own."""
    url = URL(dsn)
    conn = await asyncpg.connect(str(url.with_path("/postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()
    await migrate(dsn, service_dsn)


def renamed_records(done: set[str], renamed: dict[str, str] = RENAMED) -> list[tuple[str, str]]:
    """The (old, new) names to record again among the names ``done``: an old name whose
    new one is not recorded yet. (If both are, the old row is left alone: harmless.)"""
    return sorted((old, new) for old, new in renamed.items() if old in done and new not in done)


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for old, new in renamed_records(done):
            await conn.execute("UPDATE schema_migrations SET name = $2 WHERE name = $1", old, new)
            done = (done - {old}) | {new}
        for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")):
            if path.name in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
    return applied


# What the services may do: read and write rows (row-level security decides which), use
# the sequences and call the functions. Not: DDL, TRUNCATE, rewriting the append-only
# event log, or touching the migration record.
SERVICE_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
REVOKE UPDATE, DELETE, TRUNCATE ON event_log FROM {role};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role};
"""


def service_role(service_dsn: str) -> tuple[str, str | None]:
    url = URL(service_dsn)
    return url.user or "", url.password


async def ensure_service_role(conn: asyncpg.Connection, service_dsn: str) -> str:
    """Create the role of ``service_dsn`` if missing (LOGIN, nothing else) and grant it
    what the services need in this database. Refuses the owner's own role."""
    role, password = service_role(service_dsn)
    if not role:
        raise SystemExit("DATABASE_URL names no user: name the service role, e.g. postgresql://partsemble_app@host/db")
    if role == await conn.fetchval("SELECT current_user"):
        raise SystemExit(
            f"DATABASE_URL and DATABASE_OWNER_URL both name the role {role!r}: the services must "
            "connect as a role that owns nothing (row-level security would not apply)"
        )
    ident = await conn.fetchval("SELECT quote_ident($1)", role)
    async with conn.transaction():
        # Roles are shared by every database of the server: created once, under a lock.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY + 1)
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await conn.execute(f"CREATE ROLE {ident} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
        if password:
            await conn.execute(
                f"ALTER ROLE {ident} PASSWORD {await conn.fetchval('SELECT quote_literal($1)', password)}"
            )
        database = await conn.fetchval("SELECT quote_ident(current_database())")
        await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {ident}")
        await conn.execute(SERVICE_GRANTS.format(role=ident))
    return role


# The comparisons of numeric values: they raise no error and have no side effect for any
# input, so they cannot reveal a row that row-level security hides. PostgreSQL does not
# mark them LEAKPROOF, and on a table with row-level security it then refuses them as
# index conditions: a FIFO position range (`s_end > $2`) or a keyset page by revenue or
# margin would filter a tenant's whole index instead of seeking (46 ms instead of 0.08 ms
# on 100,000 sales). Only a superuser may mark them; elsewhere this is skipped with a
# warning and those reads are slower, not wrong (docs/security.md).
LEAKPROOF_COMPARISONS = ("numeric_eq", "numeric_ne", "numeric_lt", "numeric_le", "numeric_gt", "numeric_ge")


async def ensure_leakproof_comparisons(conn: asyncpg.Connection) -> bool:
    if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        log.warning(
            "migrate.numeric_comparisons_not_leakproof",
            hint="the owner is no superuser: numeric ranges are filters, not index conditions, under RLS",
        )
        return False
    for name in LEAKPROOF_COMPARISONS:
        await conn.execute(f"ALTER FUNCTION pg_catalog.{name}(numeric, numeric) LEAKPROOF")
    return True


async def migrate(dsn: str, service_dsn: str | None = None) -> list[str]:
    """Apply the migrations as the owner of ``dsn``; with ``service_dsn``, also set up its role."""
    await create_database(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        applied = await apply_migrations(conn)
        await ensure_leakproof_comparisons(conn)
        if service_dsn:
            await ensure_service_role(conn, service_dsn)
        return applied
    finally:
        await conn.close()


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    applied = asyncio.run(migrate(settings.database_owner_url, settings.database_url))
    log.info("migrate.done", applied=applied, service_role=service_role(settings.database_url)[0])


if __name__ == "__main__":
    main()
