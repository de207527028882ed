"""``POST /webhooks/quickbooks``: the QuickBooks channel's webhook. The signature first
(401, nothing stored), then the raw delivery and its notifications are stored in one
transaction and answered 200 at once; the notification worker does the rest. Parsed
per element: every readable notification is stored; each unreadable element (or the
whole body) is recorded in the delivery's ``parse_error`` (JSON list of ``{element,
reason}``), counted (``qbo_webhook_elements_rejected_total``), logged and still
answered 200 (an error would make Intuit retry it for hours and hold back the
deliveries behind it)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter

from services.ingest.app_keys import SETTINGS
from services.ingest.qbo.app_keys import QBO
from services.ingest.qbo.deliveries import read_delivery
from services.ingest.qbo.repository import QboRepository
from services.ingest.qbo.signature import verify
from shared.logging import get_logger
from shared.web import POOL, ApiError, json_response

log = get_logger("qbo.webhook")
routes = web.RouteTableDef()
WEBHOOKS = Counter("qbo_webhook_deliveries_total", "Webhook deliveries by outcome", ["outcome"])
REJECTED = Counter(
    "qbo_webhook_elements_rejected_total",
    "Unreadable elements of signed webhook deliveries (kept in qbo_deliveries.parse_error)",
    ["format"],
)


@routes.post("/webhooks/quickbooks")
async def webhook(request: web.Request) -> web.Response:
    body = await request.read()
    if not verify(body, request.headers.get("intuit-signature"), request.app[SETTINGS].qbo_webhook_verifier_token):
        WEBHOOKS.labels("bad_signature").inc()
        raise ApiError(401, "bad_signature", "missing or wrong intuit-signature")
    delivery = read_delivery(body)
    notifications = delivery.notifications
    async with request.app[POOL].acquire() as conn, conn.transaction():
        stored = await QboRepository(conn).store_delivery(
            request.content_type, body, delivery.parse_error(), notifications
        )
    if delivery.rejected:
        REJECTED.labels(delivery.format).inc(len(delivery.rejected))
        WEBHOOKS.labels("partial" if notifications else "unparseable").inc()
        log.error(
            "qbo.webhook.unreadable_elements",
            rejected=len(delivery.rejected),
            received=len(notifications),
            errors=[f"{r.element}: {r.reason}" for r in delivery.rejected[:5]],
            size=len(body),
        )
    else:
        WEBHOOKS.labels("stored").inc()
    for row in stored:
        if row["status"] == "ignored":
            log.warning("qbo.webhook.unknown_realm", realm=row["realm_id"])
    if any(row["status"] == "pending" for row in stored):
        request.app[QBO].worker.notify()
    return json_response({"received": len(notifications), "new": len(stored), "rejected": len(delivery.rejected)})
