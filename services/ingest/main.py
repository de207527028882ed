"""``python -m services.ingest``: migrate, then serve the ingest API on INGEST_PORT (8081)."""

import asyncio

from aiohttp import web

from services.ingest.app import create_app
from shared.logging import configure
from shared.migrate import migrate
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    asyncio.run(migrate(settings.database_url))
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.ingest_port, access_log=None,
                print=None)
