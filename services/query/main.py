"""``python -m services.query``: migrate, then serve the query API on QUERY_PORT (8082)."""

import asyncio

from aiohttp import web

from services.query.app import SERVER_LIMITS, create_app
from shared.logging import configure
from shared.migrate import migrate
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    asyncio.run(migrate(settings.database_url))
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.query_port, access_log=None,
                print=None, **SERVER_LIMITS)
