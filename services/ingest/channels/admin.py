"""The channels' operator commands, for every provider (plugged into
``python -m services.ingest.admin``):

    list-connections [--tenant <tenant_id>] [--provider quickbooks|xero] [--json]
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

import asyncpg

#: Across tenants: an operator's connection (the schema owner) sees every row.
LIST_CONNECTIONS = """
SELECT provider, realm_id, tenant_id, status, cdc_watermark, last_synced_at, last_error, sync_failures,
       token_refreshes, created_at, updated_at
FROM qbo_connections
WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR provider = $2)
ORDER BY provider, tenant_id, realm_id"""
PROVIDERS = ("quickbooks", "xero")
COMMANDS = ("list-connections",)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("list-connections", help="every channel connection of every provider (or one)")
    p.add_argument("--tenant", type=uuid.UUID, default=None)
    p.add_argument("--provider", choices=PROVIDERS, default=None)
    p.add_argument("--json", action="store_true")


async def list_connections(
    conn: asyncpg.Connection, tenant_id: uuid.UUID | None = None, provider: str | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(LIST_CONNECTIONS, tenant_id, provider)
    return [
        {
            k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if isinstance(v, uuid.UUID) else v)
            for k, v in r.items()
        }
        for r in rows
    ]


async def run_command(args: argparse.Namespace, conn: asyncpg.Connection) -> int:
    rows = await list_connections(conn, args.tenant, args.provider)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(
                f"{r['provider']:<11} {r['realm_id']:<24} tenant {r['tenant_id']} {r['status']:<18} "
                f"last synced {r['last_synced_at'] or 'never'}"
                + (f"  last error: {r['last_error']}" if r["last_error"] else "")
            )
        if not rows:
            print("no connections")
    return 0
