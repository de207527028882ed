"""A database that recorded a renamed migration under its old name: the runner records
the new name and applies nothing again (shared.migrate.RENAMED)."""

from shared.migrate import RENAMED, apply_migrations


async def test_a_migration_recorded_under_its_old_name_is_not_applied_again(pool):
    old, new = next(iter(RENAMED.items()))
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("UPDATE schema_migrations SET name = $1 WHERE name = $2", old, new)
            assert await apply_migrations(conn) == []
            names = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            assert new in names and old not in names
        finally:
            await tx.rollback()
