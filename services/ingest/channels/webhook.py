"""``POST <provider.webhook_path>``: every provider's webhook. Authenticity first (401,
nothing stored), then the raw delivery (once per distinct body) and its notifications
(deduplicated per provider) are stored in one transaction and answered 200 at once; the
provider's notification worker does the rest. Parsed per element: every readable
notification is stored; each unreadable element (or the whole body) is recorded in the
delivery's ``parse_error`` (JSON list of ``{element, reason}``), counted
(``<key>_webhook_elements_rejected_total``), logged and still answered 200 (an error
would make the provider retry it for hours and hold back the deliveries behind it)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter

from services.ingest.channels.channel import CHANNELS
from services.ingest.channels.provider import SalesChannelProvider
from services.ingest.channels.repository import ChannelRepository
from shared.logging import get_logger
from shared.web import POOL, ApiError, json_response


@dataclass(frozen=True)
class _Metrics:
    deliveries: Counter
    rejected: Counter


_METRICS: dict[str, _Metrics] = {}


def _metrics(key: str) -> _Metrics:
    if key not in _METRICS:
        _METRICS[key] = _Metrics(
            Counter(f"{key}_webhook_deliveries_total", "Webhook deliveries by outcome", ["outcome"]),
            Counter(
                f"{key}_webhook_elements_rejected_total",
                "Unreadable elements of signed webhook deliveries (kept in qbo_deliveries.parse_error)",
                ["format"],
            ),
        )
    return _METRICS[key]


def webhook_routes(
    provider: SalesChannelProvider, signature_header: str, empty_answers: bool = False
) -> web.RouteTableDef:
    """The provider's webhook route (``signature_header``: named in the 401 answer).
    ``empty_answers``: every answer has an empty body (Xero: 200 or 401, nothing else). A signed
    handshake (``ParsedDelivery.handshake``, Xero's intent to receive) is answered 200, not stored."""
    routes = web.RouteTableDef()
    name, key = provider.name, provider.key
    log = get_logger(f"{key}.webhook")
    metrics = _metrics(key)

    @routes.post(provider.webhook_path)
    async def webhook(request: web.Request) -> web.Response:
        channel = request.app[CHANNELS][name]
        body = await request.read()
        if not channel.provider.verify_webhook(body, request.headers):
            metrics.deliveries.labels("bad_signature").inc()
            if empty_answers:
                return web.Response(status=401)
            raise ApiError(401, "bad_signature", f"missing or wrong {signature_header}")
        delivery = channel.provider.parse_webhook(body)
        if delivery.handshake:
            metrics.deliveries.labels("handshake").inc()
            log.info(f"{key}.webhook.handshake")
            return web.Response(status=200) if empty_answers else json_response({"received": 0, "new": 0})
        notifications = delivery.notifications
        async with request.app[POOL].acquire() as conn, conn.transaction():
            stored = await ChannelRepository(conn, name).store_delivery(
                request.content_type, body, delivery.parse_error(), notifications
            )
        if delivery.rejected:
            metrics.rejected.labels(delivery.format).inc(len(delivery.rejected))
            metrics.deliveries.labels("partial" if notifications else "unparseable").inc()
            log.error(
                f"{key}.webhook.unreadable_elements",
                rejected=len(delivery.rejected),
                received=len(notifications),
                errors=[f"{r.element}: {r.reason}" for r in delivery.rejected[:5]],
                size=len(body),
            )
        else:
            metrics.deliveries.labels("stored").inc()
        for row in stored:
            if row["status"] == "ignored":
                log.warning(f"{key}.webhook.unknown_realm", realm=row["realm_id"])
        if any(row["status"] == "pending" for row in stored):
            channel.worker.notify()
        if empty_answers:
            return web.Response(status=200)
        return json_response({"received": len(notifications), "new": len(stored), "rejected": len(delivery.rejected)})

    return routes
