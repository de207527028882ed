"""``POST /webhooks/quickbooks``: the pipeline's webhook (``services.ingest.channels.webhook``)
with Intuit's ``intuit-signature`` and formats (``deliveries.py``)."""

from __future__ import annotations

from services.ingest.channels.webhook import webhook_routes
from services.ingest.qbo.provider import QuickBooksProvider

routes = webhook_routes(QuickBooksProvider(), "intuit-signature")
