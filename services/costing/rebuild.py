"""Rebuild one tenant's costing state: reset it, then publish the tenant's whole event
log again through ingest's replay (costing is idempotent and order-independent, so the
result is the same state, recomputed).

    python -m services.costing.rebuild --tenant ID

Connects as the schema owner (DATABASE_OWNER_URL) like the other operator commands.
Progress: a bar on a terminal, a log line every few seconds otherwise.
"""

from __future__ import annotations

import argparse
import sys
import uuid

import asyncpg
from aio_pika.abc import AbstractExchange

from services.costing.service import CostingService
from services.ingest.operator import pool_and_topology, run_command
from services.ingest.replay import Selection, replay
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("costing.rebuild")


async def rebuild(pool: asyncpg.Pool, exchange: AbstractExchange, tenant_id: uuid.UUID, show_bar: bool = False) -> int:
    """Reset one tenant's costing state and replay all of its events; returns the count published."""
    await CostingService(pool).reset_tenant(tenant_id)
    log.info("rebuild.reset", tenant=str(tenant_id))
    return await replay(pool, exchange, Selection(tenant_id=tenant_id), show_bar)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.costing.rebuild", description=__doc__.split("\n")[0])
    parser.add_argument("--tenant", type=uuid.UUID, required=True)
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    async with pool_and_topology(settings) as (pool, topology):
        count = await rebuild(pool, topology.exchange, args.tenant, sys.stderr.isatty())
    print(f"published {count} events")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
