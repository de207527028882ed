"""A connected channel: a provider with the pipeline's parts built around it (token store,
notification worker and its catch-up). ``Channels`` holds every provider the ingest app
runs, by name; the routes find theirs there (``CHANNELS``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from services.ingest.channels.provider import SalesChannelProvider
from services.ingest.channels.tokens import TokenStore
from services.ingest.channels.worker import NotificationWorker


@dataclass
class Channel:
    provider: SalesChannelProvider
    tokens: TokenStore
    worker: NotificationWorker
    session: aiohttp.ClientSession

    async def close(self) -> None:
        await self.session.close()


class Channels:
    """The providers this ingest app runs, in a stable order (QuickBooks first)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Channel] = {}

    def add(self, channel: Channel) -> None:
        self._by_name[channel.provider.name] = channel

    def __getitem__(self, name: str) -> Channel:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._by_name.values()))


CHANNELS = web.AppKey("channels", Channels)
