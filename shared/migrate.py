"""Forward-only SQL migrations: ``shared/migrations/NNNN_name.sql`` applied in order,
each once, recorded in ``schema_migrations``, under an advisory lock so that
several processes starting together apply them once.

``python -m shared.migrate`` creates the database named in DATABASE_URL if it
is missing, then applies what is new.
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


async def recreate_database(dsn: str) -> None:
    """Drop the database of ``dsn`` (closing its sessions) and create it migrated: for
    tests and benchmarks, which each work in a database of their own."""
    url = URL(dsn)
    conn = await asyncpg.connect(str(url.with_path("/postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()
    await migrate(dsn)


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")):
            if path.name in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
    return applied


async def migrate(dsn: str) -> list[str]:
    await create_database(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    applied = asyncio.run(migrate(settings.database_url))
    log.info("migrate.done", applied=applied)


if __name__ == "__main__":
    main()
