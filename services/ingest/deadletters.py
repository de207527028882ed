"""Dead-letter redrive: see what the costing consumer gave up on and why, and
publish it again after a fix.

    python -m services.ingest.deadletters list [--json]
    python -m services.ingest.deadletters redrive (--all | --event-id ID [--event-id ID ...])

``list`` peeks at the dead-letter queue (every message goes back); ``redrive``
re-publishes the chosen messages to the events exchange under their original
routing key and removes them from the dead-letter queue; the others stay.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from services.ingest.operator import pool_and_topology, run_command
from shared import broker
from shared.settings import Settings

MARK_REDRIVEN = "UPDATE dead_letters SET redriven_at = now() WHERE event_id = ANY($1::uuid[]) AND redriven_at IS NULL"


@dataclass(frozen=True)
class Parked:
    event_id: str | None
    routing_key: str
    reason: str
    body: str


def _parked(message: AbstractIncomingMessage) -> Parked:
    headers = message.headers or {}
    event_id = headers.get("event_id")
    return Parked(
        str(event_id) if event_id else None,
        str(headers.get("x-original-routing-key") or message.routing_key),
        str(headers.get("x-error", "(dead-lettered by the broker: delivery limit)")),
        message.body.decode(errors="replace")[:500],
    )


async def _drain(queue: AbstractQueue) -> list[AbstractIncomingMessage]:
    """Take every message currently in the queue, unacknowledged."""
    messages: list[AbstractIncomingMessage] = []
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        messages.append(message)
    return messages


async def list_parked(topology: broker.Topology) -> list[Parked]:
    messages = await _drain(topology.dead_letters)
    try:
        return [_parked(m) for m in messages]
    finally:
        for message in messages:
            await message.nack(requeue=True)


async def redrive(topology: broker.Topology, pool: asyncpg.Pool, event_ids: set[str] | None) -> list[Parked]:
    """Re-publish the parked messages (all when ``event_ids`` is None); returns those sent."""
    sent: list[Parked] = []
    messages = await _drain(topology.dead_letters)
    for message in messages:
        parked = _parked(message)
        if event_ids is not None and parked.event_id not in event_ids:
            await message.nack(requeue=True)
            continue
        again = broker.republished(message, {"x-redriven-after": parked.reason})
        await broker.publish_raw(topology.exchange, parked.routing_key, again)
        await message.ack()
        sent.append(parked)
    ids = [p.event_id for p in sent if p.event_id]
    if ids:
        await pool.execute(MARK_REDRIVEN, ids)
    return sent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.deadletters")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list").add_argument("--json", action="store_true")
    p = commands.add_parser("redrive")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true")
    group.add_argument("--event-id", action="append", dest="event_ids")
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    async with pool_and_topology(settings) as (pool, topology):
        if args.command == "list":
            parked = await list_parked(topology)
            if args.json:
                print(json.dumps([p.__dict__ for p in parked]))
            else:
                for p in parked:
                    print(f"{p.event_id or '-'}  {p.routing_key}  {p.reason}")
                print(f"{len(parked)} dead-lettered")
        else:
            sent = await redrive(topology, pool, None if args.all else set(args.event_ids))
            print(f"redrove {len(sent)} messages")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
