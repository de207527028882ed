"""Typed application key of the QuickBooks channel (set by the ingest composition root)."""

from aiohttp import web

from services.ingest.qbo.channel import QboChannel

QBO = web.AppKey("qbo", QboChannel)
