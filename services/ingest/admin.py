"""Operators' command line: tenants and API keys (and, later, QuickBooks realms).

    python -m services.ingest.admin create-tenant "Acme Widgets" --home-currency USD [--key-expires-in-days N] \
        [--plan starter|standard|advanced] [--receiving-enabled | --no-receiving-enabled] [--json]
    python -m services.ingest.admin update-tenant <tenant_id> [--plan …] [--receiving-enabled | --no-receiving-enabled]
    python -m services.ingest.admin create-key --tenant <tenant_id> [--expires-in-days N] [--json]
    python -m services.ingest.admin list-keys --tenant <tenant_id> [--json]   (created, expires, last used, revoked)
    python -m services.ingest.admin revoke-key <key_id or prefix>
    python -m services.ingest.admin connect-quickbooks --tenant <tenant_id> --realm <realm_id> \
        --access-token … --refresh-token … --expires-in <seconds>
    python -m services.ingest.admin rotate-token-key   (after moving the old key to TOKEN_ENCRYPTION_OLD_KEYS)
    python -m services.ingest.admin list-connections [--tenant <tenant_id>] [--provider quickbooks|xero] [--json]

Operators' commands connect as the schema owner (DATABASE_OWNER_URL). A new key is
printed once and never again; only its hash is stored. A key without an expiry never
expires; an expired one is refused like a revoked one. "Last used" is recorded by the
services at most once a minute per key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg

from services.ingest.channels import admin as channels_admin
from services.ingest.qbo import admin as qbo_admin
from services.ingest.qbo.admin import connect_quickbooks as connect_quickbooks  # re-exported for tests
from services.ingest.schemas import _currency
from shared.api_keys import create_key, expiry_in_days, list_keys, revoke_key
from shared.db import set_tenant
from shared.migrate import migrate
from shared.plans import PLANS, entitled
from shared.settings import Settings

INSERT_TENANT = "INSERT INTO tenants (id, name, home_currency, plan, receiving_enabled) VALUES ($1, $2, $3, $4, $5)"
UPDATE_TENANT = """
UPDATE tenants SET plan = coalesce($2, plan), receiving_enabled = coalesce($3, receiving_enabled) WHERE id = $1
RETURNING id, name, plan, receiving_enabled"""


async def create_tenant(
    conn: asyncpg.Connection,
    name: str,
    home_currency: str,
    key_expires_at: datetime | None = None,
    plan: str = "advanced",
    receiving_enabled: bool = True,
) -> tuple[uuid.UUID, str]:
    """A new tenant and its first API key (``key_expires_at``: None never expires)."""
    tenant_id = uuid.uuid4()
    async with conn.transaction():
        await set_tenant(conn, tenant_id)  # row-level security: the new tenant's rows only
        await conn.execute(INSERT_TENANT, tenant_id, name, home_currency, plan, receiving_enabled)
        key = await create_key(conn, tenant_id, key_expires_at)
    return tenant_id, key.key


async def update_tenant(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, plan: str | None = None, receiving_enabled: bool | None = None
) -> asyncpg.Record | None:
    """Change a tenant's plan and/or receiving (None: unchanged); never deletes anything.
    The services see the change on the tenant's next request (read with the API key)."""
    async with conn.transaction():
        await set_tenant(conn, tenant_id)
        return await conn.fetchrow(UPDATE_TENANT, tenant_id, plan, receiving_enabled)


def key_rows(records: Iterable[asyncpg.Record]) -> list[dict[str, str | None]]:
    """``list_keys`` rows as JSON-ready dicts (times ISO 8601, None when unset)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return [
        {
            "id": str(r["id"]),
            "prefix": r["prefix"],
            "created_at": iso(r["created_at"]),
            "expires_at": iso(r["expires_at"]),
            "last_used_at": iso(r["last_used_at"]),
            "revoked_at": iso(r["revoked_at"]),
        }
        for r in records
    ]


def format_keys(rows: list[dict[str, str | None]], now: datetime | None = None) -> str:
    """One line per key: id, prefix, created, expires, last used, revoked."""
    now = now or datetime.now(UTC)
    lines = []
    for r in rows:
        expires = r["expires_at"] or "never"
        if r["expires_at"] and datetime.fromisoformat(r["expires_at"]) <= now:
            expires += " (EXPIRED)"
        line = (
            f"{r['id']}  psk_{r['prefix']}_…  created {r['created_at']}  expires {expires}"
            f"  last used {r['last_used_at'] or 'never'}"
        )
        lines.append(line + (f"  REVOKED {r['revoked_at']}" if r["revoked_at"] else ""))
    return "\n".join(lines) or "no keys"


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from exc
    if not 0 < days <= 36500:
        raise argparse.ArgumentTypeError("the number of days must be above 0 (and at most 36500)")
    return days


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.admin", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("create-tenant", help="create a tenant and print its first API key")
    p.add_argument("name")
    p.add_argument("--home-currency", default="USD", type=_currency_arg)
    p.add_argument("--key-expires-in-days", type=_days, default=None, help="the first key expires (default: never)")
    p.add_argument("--plan", choices=PLANS, default="advanced", help="the plan (default: advanced)")
    p.add_argument(
        "--receiving-enabled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="receiving is enabled (default: on)",
    )
    p.add_argument("--json", action="store_true")
    p = commands.add_parser("update-tenant", help="change a tenant's plan or receiving (sales tracking needs both)")
    p.add_argument("tenant", type=uuid.UUID)
    p.add_argument("--plan", choices=PLANS, default=None)
    p.add_argument("--receiving-enabled", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--json", action="store_true")
    for name in ("create-key", "list-keys"):
        p = commands.add_parser(name)
        p.add_argument("--tenant", required=True, type=uuid.UUID)
        if name == "create-key":
            p.add_argument("--expires-in-days", type=_days, default=None, help="the key expires (default: never)")
        p.add_argument("--json", action="store_true")
    p = commands.add_parser("revoke-key")
    p.add_argument("key", help="key id or prefix")
    qbo_admin.add_commands(commands)
    channels_admin.add_commands(commands)
    return parser


def _currency_arg(value: str) -> str:
    try:
        return _currency(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


async def run(args: argparse.Namespace, settings: Settings) -> int:
    await migrate(settings.database_owner_url, settings.database_url)
    conn = await asyncpg.connect(settings.database_owner_url)  # an operator's command: the owner
    try:
        if args.command == "create-tenant":
            tenant_id, key = await create_tenant(
                conn,
                args.name,
                args.home_currency,
                expiry_in_days(getattr(args, "key_expires_in_days", None)),
                args.plan,
                args.receiving_enabled,
            )
            _print(
                args.json,
                {"tenant_id": str(tenant_id), "api_key": key},
                f"tenant {tenant_id} created\nAPI key (shown once, keep it safe): {key}",
            )
        elif args.command == "update-tenant":
            row = await update_tenant(conn, args.tenant, args.plan, args.receiving_enabled)
            if row is None:
                print(f"no tenant {args.tenant}", file=sys.stderr)
                return 1
            data = {
                "tenant_id": str(row["id"]),
                "plan": row["plan"],
                "receiving_enabled": row["receiving_enabled"],
                "sales_tracking": entitled(row["plan"], row["receiving_enabled"]),
            }
            on = "on" if data["sales_tracking"] else "off (needs the Advanced plan and receiving enabled)"
            _print(
                args.json,
                data,
                f"tenant {row['id']}: plan {row['plan']}, receiving "
                f"{'enabled' if row['receiving_enabled'] else 'disabled'}, sales tracking {on}",
            )
        elif args.command == "create-key":
            new = await create_key(conn, args.tenant, expiry_in_days(getattr(args, "expires_in_days", None)))
            expires = new.expires_at.isoformat() if new.expires_at else None
            _print(
                args.json,
                {"tenant_id": str(args.tenant), "key_id": str(new.id), "api_key": new.key, "expires_at": expires},
                f"API key {new.id} (shown once): {new.key}\nexpires: {expires or 'never'}",
            )
        elif args.command == "list-keys":
            rows = key_rows(await list_keys(conn, args.tenant))
            _print(args.json, rows, format_keys(rows))
        elif args.command == "revoke-key":
            if not await revoke_key(conn, args.key):
                print(f"no live key {args.key!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.key}")
        elif args.command in channels_admin.COMMANDS:
            return await channels_admin.run_command(args, conn)
        else:
            return await qbo_admin.run_command(args, conn, settings)
        return 0
    finally:
        await conn.close()


def _print(as_json: bool, data: object, text: str) -> None:
    print(json.dumps(data) if as_json else text)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(_parser().parse_args(argv), Settings()))


if __name__ == "__main__":
    sys.exit(main())
