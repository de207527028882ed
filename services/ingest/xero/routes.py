"""Xero's routes, all the pipeline's: ``POST /webhooks/xero`` (``x-xero-signature``; empty
answers, the intent-to-receive handshake answered and not stored), the connect flow at
``/oauth/xero/connect`` and ``/callback`` (browser-bound, single-use state; docs/security.md)
and ``/api/v1/connections/xero`` (list, sync now, disconnect)."""

from __future__ import annotations

from aiohttp import web

from services.ingest.channels.connect import Flow, connect_routes
from services.ingest.channels.connections import connection_routes
from services.ingest.channels.webhook import webhook_routes
from services.ingest.xero.provider import XeroProvider

SIGNATURE_HEADER = "x-xero-signature"
CONNECT_PATH = "/oauth/xero/connect"


def xero_routes(redirect_uri: str) -> list[web.RouteTableDef]:
    provider = XeroProvider()
    return [
        webhook_routes(provider, SIGNATURE_HEADER, empty_answers=True),
        connect_routes(Flow.of(provider, redirect_uri=redirect_uri)),
        connection_routes(provider),
    ]
