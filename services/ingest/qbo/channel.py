"""The QuickBooks channel's parts, built once per ingest app: the provider (Intuit's API
client and OAuth) with the pipeline's token store and notification worker around it."""

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
from services.ingest.qbo.client import QboClient
from services.ingest.qbo.oauth import OAuthClient
from services.ingest.qbo.provider import QuickBooksProvider
from shared.secrets import token_keys
from shared.settings import Settings


@dataclass
class QboChannel(Channel):
    oauth: OAuthClient
    client: QboClient

    @classmethod
    def build(cls, pool: asyncpg.Pool, settings: Settings, on_events: Callable[[], None]) -> QboChannel:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        oauth = OAuthClient(session, settings)
        tokens = TokenStore(
            pool,
            TokenCipher(token_keys(settings.token_encryption_key, settings.token_encryption_old_keys)),
            oauth,
            "quickbooks",
            "qbo",
        )
        client = QboClient(session, settings, tokens)
        provider = QuickBooksProvider(settings, client, oauth)
        worker = NotificationWorker(
            pool,
            provider,
            CatchUp(pool, provider, settings.qbo_initial_import_days),
            settings.qbo_coalesce_threshold,
            settings.qbo_cdc_interval_seconds,
            on_events,
        )
        return cls(provider, tokens, worker, session, oauth, client)
