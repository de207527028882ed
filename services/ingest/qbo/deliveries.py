"""Parsing a webhook delivery into notifications, for both formats Intuit sends:
the CloudEvents JSON array and the classic ``eventNotifications`` object.

Per element: one unreadable CloudEvent (or classic element, or entity change) does
not reject the others. ``read_delivery`` returns the readable notifications and a
``Rejected`` record (where, why) per unreadable element; ``parse_error()`` is what
the delivery row keeps: a JSON list ``[{"element": "2", "reason": "…"}]``
(``element`` is the array index, ``"1.entities.0"`` for a classic entity change,
null when the whole body is unreadable)."""

from __future__ import annotations

import hashlib
import json
import re

from services.ingest.channels.provider import ChangeNotification, ParsedDelivery, Rejected, parse_time

ENTITIES = {
    "invoice": "Invoice",
    "salesreceipt": "SalesReceipt",
    "creditmemo": "CreditMemo",
    "item": "Item",
    "refundreceipt": "RefundReceipt",
    "customer": "Customer",
}
# CloudEvents verbs → classic operations. Intuit's void spelling is unconfirmed: accept both.
OPERATIONS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "void": "Void",
    "voided": "Void",
    "emailed": "Emailed",
}
_CLASSIC = {op.lower(): op for op in ("Create", "Update", "Delete", "Merge", "Void", "Emailed")}
_TYPE = re.compile(r"^qbo\.([a-z]+)\.([a-z]+)\.v\d+$", re.IGNORECASE)


class DeliveryError(ValueError):
    """A signed body we cannot read; kept raw for inspection."""


Notification = ChangeNotification
Delivery = ParsedDelivery


def read_delivery(body: bytes) -> Delivery:
    """Every readable notification of a delivery, and each unreadable element with its reason."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return Delivery("unreadable", [], [Rejected(None, f"not JSON: {exc}")])
    notifications, rejected = [], []
    if isinstance(data, list):
        for i, event in enumerate(data):
            try:
                notifications.append(_cloud_event(event))
            except DeliveryError as exc:
                rejected.append(Rejected(str(i), str(exc)))
        return Delivery("cloudevents", notifications, rejected)
    if isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        for i, element in enumerate(data["eventNotifications"]):
            try:
                found, bad = _classic(element)
            except DeliveryError as exc:
                rejected.append(Rejected(str(i), str(exc)))
                continue
            notifications += found
            rejected += [Rejected(f"{i}.entities.{j}", reason) for j, reason in bad]
        return Delivery("classic", notifications, rejected)
    return Delivery("unreadable", [], [Rejected(None, "neither a CloudEvents array nor an eventNotifications object")])


def parse_delivery(body: bytes) -> list[Notification]:
    """Strict: the notifications, or DeliveryError if anything in the body is unreadable."""
    delivery = read_delivery(body)
    if delivery.rejected:
        first = delivery.rejected[0]
        raise DeliveryError(first.reason if first.element is None else f"element {first.element}: {first.reason}")
    return delivery.notifications


def _cloud_event(event: object) -> Notification:
    if not isinstance(event, dict) or "specversion" not in event or "type" not in event:
        raise DeliveryError("a CloudEvents element lacks specversion or type")
    match = _TYPE.match(str(event["type"]))
    if not match or not event.get("id") or not event.get("intuitaccountid") or not event.get("intuitentityid"):
        raise DeliveryError(f"unreadable CloudEvent: type={event.get('type')!r}")
    entity, verb = match.group(1).lower(), match.group(2).lower()
    raw_data = event.get("data")
    data = raw_data if isinstance(raw_data, dict) else {}
    return Notification(
        dedupe_key=f"ce:{event['id']}",
        realm_id=str(event["intuitaccountid"]),
        entity=ENTITIES.get(entity, entity.capitalize()),
        entity_id=str(event["intuitentityid"]),
        operation=OPERATIONS.get(verb, verb.capitalize()),
        occurred_at=parse_time(event.get("time")),
        deleted_id=_str(data.get("deletedid", data.get("deletedId"))),
    )


def _classic(element: object) -> tuple[list[Notification], list[tuple[int, str]]]:
    if not isinstance(element, dict) or "realmId" not in element:
        raise DeliveryError("an eventNotifications element lacks realmId")
    realm = str(element["realmId"])
    change = element.get("dataChangeEvent") or {}
    entities = change.get("entities") if isinstance(change, dict) else None
    if not isinstance(entities, list):
        raise (
            DeliveryError("an eventNotifications element has no entities list")
            if entities
            else DeliveryError("an eventNotifications element has no dataChangeEvent.entities")
        )
    out: list[Notification] = []
    bad: list[tuple[int, str]] = []
    for j, e in enumerate(entities):
        if not isinstance(e, dict) or not e.get("name") or not e.get("id") or not e.get("operation"):
            bad.append((j, "an entity change lacks name, id or operation"))
            continue
        operation = _CLASSIC.get(str(e["operation"]).lower(), str(e["operation"]))
        key = "|".join([realm, str(e["name"]), str(e["id"]), operation, str(e.get("lastUpdated", ""))])
        out.append(
            Notification(
                dedupe_key="legacy:" + hashlib.sha256(key.encode()).hexdigest(),
                realm_id=realm,
                entity=ENTITIES.get(str(e["name"]).lower(), str(e["name"])),
                entity_id=str(e["id"]),
                operation=operation,
                occurred_at=parse_time(e.get("lastUpdated")),
                deleted_id=_str(e.get("deletedId")),
            )
        )
    return out, bad


def _str(value: object) -> str | None:
    return None if value is None else str(value)


__all__ = ["Delivery", "DeliveryError", "Notification", "Rejected", "parse_delivery", "parse_time", "read_delivery"]
