"""``python -m services.query``: serve the query API on QUERY_PORT (8082) (migrations: ``python -m shared.migrate``)."""

from aiohttp import web

from services.query.app import SERVER_LIMITS, create_app
from shared.logging import configure
from shared.settings import Settings
from shared.startup import run_guarded


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    run_guarded(lambda: web.run_app(create_app(settings), host=settings.bind_host, port=settings.query_port,
                                    access_log=None, print=None, **SERVER_LIMITS))
