"""The QuickBooks channel's operator commands, plugged into ``python -m services.ingest.admin``
(the operators' command line wires them in; see its docstring for the usage)."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.ingest.qbo.repository import QboRepository
from services.ingest.qbo.tokens_crypto import TokenCipher
from shared.secrets import token_keys
from shared.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the channel's subcommands to the operators' command line."""
    p = commands.add_parser("connect-quickbooks", help="link a QuickBooks company to a tenant with tokens")
    p.add_argument("--tenant", required=True, type=uuid.UUID)
    p.add_argument("--realm", required=True)
    p.add_argument("--access-token", required=True)
    p.add_argument("--refresh-token", required=True)
    p.add_argument("--expires-in", required=True, type=int)
    p = commands.add_parser(
        "rotate-token-key",
        help="re-encrypt every stored OAuth token under TOKEN_ENCRYPTION_KEY "
        "(the previous key in TOKEN_ENCRYPTION_OLD_KEYS)",
    )
    p.add_argument("--realm", action="append", help="only this realm (repeatable; default: every realm)")


async def run_command(args: argparse.Namespace, conn: asyncpg.Connection, settings: Settings) -> int:
    """Run one of the channel's subcommands (an operator's connection: the schema owner)."""
    if args.command == "connect-quickbooks":
        if not await connect_quickbooks(
            conn, settings, args.tenant, args.realm, args.access_token, args.refresh_token, args.expires_in
        ):
            print(f"realm {args.realm} is connected to another tenant", file=sys.stderr)
            return 1
        print(f"realm {args.realm} connected to tenant {args.tenant}; the ingest service imports its history")
    elif args.command == "rotate-token-key":
        rewritten, current = await rotate_token_key(conn, settings, args.realm)
        print(f"{rewritten} connections re-encrypted under the current TOKEN_ENCRYPTION_KEY, {current} already were")
    else:
        raise ValueError(f"unknown command {args.command!r}")
    return 0


async def connect_quickbooks(
    conn: asyncpg.Connection,
    settings: Settings,
    tenant_id: uuid.UUID,
    realm_id: str,
    access_token: str,
    refresh_token: str,
    expires_in: int,
) -> bool:
    """Store a realm's tokens (encrypted) and link it to the tenant; False if another tenant has it."""
    cipher = TokenCipher(token_keys(settings.token_encryption_key, settings.token_encryption_old_keys))
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
    return await QboRepository(conn).upsert_connection(
        realm_id, tenant_id, cipher.encrypt(access_token, realm_id), cipher.encrypt(refresh_token, realm_id), expires_at
    )


CONNECTIONS_TO_ROTATE = """
SELECT provider, realm_id, access_token, refresh_token FROM qbo_connections
WHERE $1::text[] IS NULL OR realm_id = ANY($1::text[]) ORDER BY provider, realm_id FOR UPDATE"""
REWRITE_TOKENS = (
    "UPDATE qbo_connections SET access_token = $2, refresh_token = $3 WHERE realm_id = $1 AND provider = $4"
)


async def rotate_token_key(
    conn: asyncpg.Connection, settings: Settings, realms: list[str] | None = None
) -> tuple[int, int]:
    """Re-encrypt every connection's tokens, of every provider (or those of ``realms``), under
    the current TOKEN_ENCRYPTION_KEY, in one transaction (rows locked, so a concurrent refresh
    waits and then writes under the new key too). Returns (rewritten, already current). A token
    no configured key decrypts stops the rotation with nothing changed."""
    cipher = TokenCipher(token_keys(settings.token_encryption_key, settings.token_encryption_old_keys))
    rewritten = current = 0
    async with conn.transaction():
        for row in await conn.fetch(CONNECTIONS_TO_ROTATE, realms):
            realm = row["realm_id"]
            if cipher.is_current(row["access_token"], realm) and cipher.is_current(row["refresh_token"], realm):
                current += 1
                continue
            await conn.execute(
                REWRITE_TOKENS,
                realm,
                cipher.encrypt(cipher.decrypt(row["access_token"], realm), realm),
                cipher.encrypt(cipher.decrypt(row["refresh_token"], realm), realm),
                row["provider"],
            )
            rewritten += 1
    return rewritten, current
