"""Typed application keys of the query app."""

import asyncpg
from aiohttp import web

from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
#: Connections whose prepared statements run generic plans (views.Statement.generic);
#: shared.web.POOL plans every execution for its values.
GENERIC_POOL = web.AppKey("generic_pool", asyncpg.Pool)
#: Where reads go: the pools of QUERY_DATABASE_URL (a streaming replica), else POOL and GENERIC_POOL.
READ_POOL = web.AppKey("read_pool", asyncpg.Pool)
READ_GENERIC_POOL = web.AppKey("read_generic_pool", asyncpg.Pool)
