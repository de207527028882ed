"""``/api/v1/connections/quickbooks``: the pipeline's connection routes
(``services.ingest.channels.connections``) for QuickBooks — a contract, unchanged."""

from __future__ import annotations

import asyncpg

from services.ingest.channels import connections as _connections
from services.ingest.channels.connections import connection_routes, state
from services.ingest.qbo.provider import QuickBooksProvider

__all__ = ["plain_error", "routes", "state"]

_PROVIDER = QuickBooksProvider()
routes = connection_routes(_PROVIDER)


def plain_error(error: str | None) -> str | None:
    """The last failed sync in plain words (the stored text names a library's exception)."""
    return _connections.plain_error(_PROVIDER, error)


def _state(row: asyncpg.Record, syncing: bool) -> str:  # kept for callers of the old name
    return state(row, syncing)
