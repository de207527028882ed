"""``python -m services.query``: serve the query API on QUERY_PORT (8082) (migrations: ``python -m shared.migrate``)."""

from services.query.app import SERVER_LIMITS, create_app
from shared.http_server import run
from shared.logging import configure
from shared.settings import Settings
from shared.startup import run_guarded


def main() -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    # shared.http_server.run, not web.run_app: a malformed request (a header over the limit) is
    # answered as JSON and its bytes (an API key) never logged.
    run_guarded(
        lambda: run(
            create_app(settings),
            host=settings.bind_host,
            port=settings.query_port,
            grace=settings.shutdown_grace_seconds,
            **SERVER_LIMITS,
        )
    )
