"""Recovery: re-publish events from the event log.

    python -m services.ingest.replay [--tenant ID] [--since T] [--until T] [--source manual|quickbooks]
                                     [--event-type TYPE ...]

Costing is idempotent and order-independent, so replaying any range changes
nothing that was right and repairs what was missed. (A rebuild, which resets a
tenant's costing state first, is costing's command: ``python -m services.costing.rebuild``.)
Progress: a bar on a terminal, a log line every few seconds otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aio_pika.abc import AbstractExchange
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm has no type hints; types-tqdm is not a dependency

from services.ingest.operator import pool_and_topology, run_command
from services.ingest.repository import OutboxRepository
from shared import broker
from shared.events import EVENT_TYPES
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("ingest.replay")
BATCH = 500


@dataclass(frozen=True)
class Selection:
    tenant_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    event_types: list[str] | None = None

    def args(self) -> tuple[uuid.UUID | None, datetime | None, datetime | None, str | None, list[str] | None]:
        return self.tenant_id, self.since, self.until, self.source, self.event_types


async def replay(pool: asyncpg.Pool, exchange: AbstractExchange, selection: Selection, show_bar: bool = False) -> int:
    """Publish the selected log rows in log order, each confirmed; returns the count."""
    async with pool.acquire() as conn:
        total = await OutboxRepository(conn).log_count(*selection.args())
    done, last_seq, last_report = 0, 0, time.monotonic()
    with tqdm(total=total, unit="event", disable=not show_bar) as bar:
        while True:
            async with pool.acquire() as conn:
                rows = await OutboxRepository(conn).log_range(last_seq, *selection.args(), BATCH)
            if not rows:
                break
            await asyncio.gather(
                *(
                    broker.publish_raw(
                        exchange,
                        r["event_type"],
                        broker.event_message(
                            bytes(r["body"]),
                            str(r["event_id"]),
                            str(r["tenant_id"]),
                            r["correlation_id"],
                            {"x-replayed": True},
                        ),
                    )
                    for r in rows
                )
            )
            done += len(rows)
            last_seq = rows[-1]["seq"]
            bar.update(len(rows))
            if not show_bar and time.monotonic() - last_report > 5:
                log.info("replay.progress", published=done, total=total)
                last_report = time.monotonic()
    log.info("replay.done", published=done)
    return done


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.replay", description=__doc__.split("\n")[1])
    parser.add_argument("--tenant", type=uuid.UUID)
    parser.add_argument("--since", type=datetime.fromisoformat, help="recorded at or after (ISO 8601)")
    parser.add_argument("--until", type=datetime.fromisoformat, help="recorded before (ISO 8601)")
    parser.add_argument("--source", choices=["manual", "quickbooks"])
    parser.add_argument("--event-type", action="append", choices=EVENT_TYPES, dest="event_types")
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    async with pool_and_topology(settings) as (pool, topology):
        show_bar = sys.stderr.isatty()
        selection = Selection(args.tenant, args.since, args.until, args.source, args.event_types)
        count = await replay(pool, topology.exchange, selection, show_bar)
    print(f"published {count} events")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
