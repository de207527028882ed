"""``python -m services.ingest``: serve the ingest API on INGEST_PORT (8081).

Migrations: ``python -m shared.migrate``."""

from services.ingest.app import create_app
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
            port=settings.ingest_port,
            grace=settings.shutdown_grace_seconds,
        )
    )
