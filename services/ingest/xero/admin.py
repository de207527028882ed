"""Linking a Xero organisation to a tenant with tokens (the demo and operators; the connect flow
does the same through ``TokenStore.save``): tokens encrypted with the TokenCipher, never logged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.ingest.channels.repository import ChannelRepository
from services.ingest.channels.tokens_crypto import TokenCipher
from shared.secrets import token_keys
from shared.settings import Settings


async def connect_xero(
    conn: asyncpg.Connection,
    settings: Settings,
    tenant_id: uuid.UUID,
    organisation_id: str,
    access_token: str,
    refresh_token: str,
    expires_in: int,
) -> bool:
    """Store an organisation's tokens (encrypted) and link it to the tenant; False if another tenant has it."""
    cipher = TokenCipher(token_keys(settings.token_encryption_key, settings.token_encryption_old_keys))
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
    return await ChannelRepository(conn, "xero").upsert_connection(
        organisation_id,
        tenant_id,
        cipher.encrypt(access_token, organisation_id),
        cipher.encrypt(refresh_token, organisation_id),
        expires_at,
    )
