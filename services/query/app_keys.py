"""Typed application keys of the query app."""

from aiohttp import web

from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
