"""The QuickBooks channel's parts, built once per ingest app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import asyncpg

from services.ingest.qbo.client import QboClient
from services.ingest.qbo.oauth import OAuthClient, TokenStore
from services.ingest.qbo.sync import CatchUp
from services.ingest.qbo.tokens_crypto import TokenCipher
from services.ingest.qbo.worker import NotificationWorker
from shared.secrets import token_keys
from shared.settings import Settings


@dataclass
class QboChannel:
    session: aiohttp.ClientSession
    oauth: OAuthClient
    tokens: TokenStore
    client: QboClient
    worker: NotificationWorker

    @classmethod
    def build(cls, pool: asyncpg.Pool, settings: Settings, on_events: Callable[[], None]) -> QboChannel:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        oauth = OAuthClient(session, settings)
        tokens = TokenStore(
            pool, TokenCipher(token_keys(settings.token_encryption_key, settings.token_encryption_old_keys)), oauth
        )
        client = QboClient(session, settings, tokens)
        worker = NotificationWorker(
            pool,
            client,
            CatchUp(pool, client, settings.qbo_initial_import_days),
            settings.qbo_coalesce_threshold,
            settings.qbo_cdc_interval_seconds,
            on_events,
        )
        return cls(session, oauth, tokens, client, worker)

    async def close(self) -> None:
        await self.session.close()
