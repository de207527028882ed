"""What the operators' commands (replay, dead letters) share: settings, logging,
a database pool and the declared broker topology, opened and closed once.

Operator commands act across tenants (replay everything, list every dead letter), so
they connect as the schema owner (DATABASE_OWNER_URL), like migrations: they are run by
a person with the owner's credentials, never by a service (docs/security.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg

from shared import broker
from shared.db import create_pool
from shared.logging import configure
from shared.settings import Settings


@contextlib.asynccontextmanager
async def pool_and_topology(settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, broker.Topology]]:
    pool = await create_pool(settings.database_owner_url)
    try:
        connection = await broker.connect(settings.amqp_url)
        try:
            channel = await broker.open_channel(connection)
            yield (
                pool,
                await broker.declare(channel, broker.Names(settings.broker_prefix), settings.costing_delivery_limit),
            )
        finally:
            await connection.close()
    finally:
        await pool.close()


def run_command(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
    argv: list[str] | None,
) -> int:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    return asyncio.run(run(parser.parse_args(argv), settings))
