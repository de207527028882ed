"""Typed application keys of the ingest app."""

from aiohttp import web

from services.ingest.qbo.channel import QboChannel
from services.ingest.relay import OutboxRelay
from services.ingest.service import IngestService
from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", IngestService)
RELAY = web.AppKey("relay", OutboxRelay)
QBO = web.AppKey("qbo", QboChannel)
