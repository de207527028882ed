"""The Xero channel's parts, built once per ingest app: the provider (Xero's API client and
OAuth) with the pipeline's token store (encrypted with the same TokenCipher as QuickBooks')
and notification worker around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import asyncpg

from services.ingest.channels.channel import Channel
from services.ingest.channels.sync import CatchUp
from services.ingest.channels.tokens import TokenStore
from services.ingest.channels.tokens_crypto import TokenCipher
from services.ingest.channels.worker import NotificationWorker
from services.ingest.xero.client import XeroClient
from services.ingest.xero.oauth import XeroOAuth
from services.ingest.xero.provider import XeroProvider
from shared.secrets import token_keys
from shared.settings import Settings


@dataclass
class XeroChannel(Channel):
    oauth: XeroOAuth
    client: XeroClient

    @classmethod
    def build(cls, pool: asyncpg.Pool, settings: Settings, on_events: Callable[[], None]) -> XeroChannel:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        oauth = XeroOAuth(session, settings)
        tokens = TokenStore(
            pool,
            TokenCipher(token_keys(settings.token_encryption_key, settings.token_encryption_old_keys)),
            oauth,
            "xero",
            "xero",
        )
        client = XeroClient(session, settings, tokens)
        provider = XeroProvider(settings, client, oauth)
        worker = NotificationWorker(
            pool,
            provider,
            CatchUp(pool, provider, settings.xero_initial_import_days),
            settings.xero_coalesce_threshold,
            settings.xero_sync_interval_seconds,
            on_events,
        )
        return cls(provider, tokens, worker, session, oauth, client)
