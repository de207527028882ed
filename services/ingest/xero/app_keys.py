"""Typed application key of the Xero channel (set by the ingest composition root)."""

from aiohttp import web

from services.ingest.xero.channel import XeroChannel

XERO = web.AppKey("xero", XeroChannel)
