"""Typed application keys of the query app."""

import asyncpg
from aiohttp import web

from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
#: Connections whose prepared statements run generic plans (views.Statement.generic);
#: shared.web.POOL plans every execution for its values.
GENERIC_POOL = web.AppKey("generic_pool", asyncpg.Pool)
