"""``python -m services.ingest``: serve the ingest API on INGEST_PORT (8081) (migrations: ``python -m shared.migrate``)."""

from aiohttp import web

from services.ingest.app import create_app
from shared.logging import configure
from shared.settings import Settings
from shared.startup import run_guarded


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    run_guarded(lambda: web.run_app(create_app(settings), host=settings.bind_host, port=settings.ingest_port,
                                    access_log=None, print=None))
