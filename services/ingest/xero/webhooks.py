"""Xero webhooks (docs/xero.md §2): ``x-xero-signature`` = base64(HMAC-SHA256(webhook key, raw
body)), checked on the raw bytes in constant time; a body ``{"events": [...], "firstEventSequence",
"lastEventSequence", "entropy"}`` whose events may name several tenants. An intent-to-receive
request (no events) is a handshake: answered, never stored. Events carry no id of their own: the
dedupe key hashes (tenant, category, resource, type, date), so a retry or a duplicate is stored once.
Only INVOICE and CREDITNOTE events name sales; others (CONTACT, SUBSCRIPTION) are kept and ignored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from services.ingest.channels.provider import ChangeNotification, ParsedDelivery, Rejected, parse_time

ENTITIES = {"INVOICE": "Invoice", "CREDITNOTE": "CreditNote", "CONTACT": "Contact", "SUBSCRIPTION": "Subscription"}
OPERATIONS = {"CREATE": "Create", "UPDATE": "Update"}


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, header: str | None, key: str | None) -> bool:
    """True only for a present header matching the raw bytes; constant-time compare."""
    if not header or not key:
        return False
    return hmac.compare_digest(sign(body, key).encode(), header.strip().encode())


def read_delivery(body: bytes) -> ParsedDelivery:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return ParsedDelivery("unreadable", [], [Rejected(None, f"not JSON: {exc}")])
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        return ParsedDelivery("unreadable", [], [Rejected(None, "not an object with an events list")])
    if not data["events"]:
        return ParsedDelivery("intent_to_receive", [], [], handshake=True)
    notifications: list[ChangeNotification] = []
    rejected: list[Rejected] = []
    for i, event in enumerate(data["events"]):
        try:
            notifications.append(_event(event))
        except ValueError as exc:
            rejected.append(Rejected(str(i), str(exc)))
    return ParsedDelivery("events", notifications, rejected)


def _event(event: object) -> ChangeNotification:
    if not isinstance(event, dict):
        raise ValueError("an event is not an object")
    tenant, resource = event.get("tenantId"), event.get("resourceId")
    category, event_type = str(event.get("eventCategory") or "").upper(), str(event.get("eventType") or "").upper()
    if not tenant or not resource or not category or not event_type:
        raise ValueError("an event lacks tenantId, resourceId, eventCategory or eventType")
    when = event.get("eventDateUtc")
    occurred = parse_time(when)
    if occurred is not None and occurred.tzinfo is None:  # Xero sends UTC without an offset
        occurred = parse_time(f"{when}+00:00")
    key = "|".join([str(tenant), category, str(resource), event_type, str(when or "")])
    return ChangeNotification(
        dedupe_key="xero:" + hashlib.sha256(key.encode()).hexdigest(),
        realm_id=str(tenant),
        entity=ENTITIES.get(category, category.capitalize()),
        entity_id=str(resource),
        operation=OPERATIONS.get(event_type, event_type.capitalize()),
        occurred_at=occurred,
    )
