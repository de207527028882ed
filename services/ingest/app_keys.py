"""Typed application keys of the ingest app's core (the QuickBooks channel keeps its own
key in its package)."""

from aiohttp import web

from services.ingest.group_commit import SaleGroupCommit
from services.ingest.relay import OutboxRelay
from services.ingest.service import IngestService
from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", IngestService)
RELAY = web.AppKey("relay", OutboxRelay)
GROUP_COMMIT = web.AppKey("group_commit", SaleGroupCommit)
