"""The pipeline's SQL (``services.ingest.channels.repository``) bound to QuickBooks."""

from __future__ import annotations

from services.ingest.channels.repository import ChannelRepository
from shared.db import Connection


class QboRepository(ChannelRepository):
    def __init__(self, conn: Connection):
        super().__init__(conn, "quickbooks")
