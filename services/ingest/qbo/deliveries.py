"""Parsing a webhook delivery into notifications, for both formats Intuit sends:
the CloudEvents JSON array and the classic ``eventNotifications`` object."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

ENTITIES = {"invoice": "Invoice", "salesreceipt": "SalesReceipt", "creditmemo": "CreditMemo", "item": "Item",
            "refundreceipt": "RefundReceipt", "customer": "Customer"}
# CloudEvents verbs → classic operations. Intuit's void spelling is unconfirmed: accept both.
OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete", "merged": "Merge", "void": "Void",
              "voided": "Void", "emailed": "Emailed"}
_CLASSIC = {op.lower(): op for op in ("Create", "Update", "Delete", "Merge", "Void", "Emailed")}
_TYPE = re.compile(r"^qbo\.([a-z]+)\.([a-z]+)\.v\d+$", re.IGNORECASE)
_FRACTION = re.compile(r"(\.\d{6})\d+")
_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


class DeliveryError(ValueError):
    """A signed body we cannot read; kept raw for inspection."""


@dataclass(frozen=True)
class Notification:
    dedupe_key: str
    realm_id: str
    entity: str
    entity_id: str
    operation: str
    occurred_at: datetime | None
    deleted_id: str | None = None


def parse_time(value) -> datetime | None:
    """Lenient ISO 8601: 'Z', offsets with or without a colon, nanoseconds."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    text = _OFFSET.sub(r"\1:\2", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_delivery(body: bytes) -> list[Notification]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeliveryError(f"not JSON: {exc}") from exc
    if isinstance(data, list):
        return [_cloud_event(e) for e in data]
    if isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        return [n for element in data["eventNotifications"] for n in _classic(element)]
    raise DeliveryError("neither a CloudEvents array nor an eventNotifications object")


def _cloud_event(event) -> Notification:
    if not isinstance(event, dict) or "specversion" not in event or "type" not in event:
        raise DeliveryError("a CloudEvents element lacks specversion or type")
    match = _TYPE.match(str(event["type"]))
    if not match or not event.get("id") or not event.get("intuitaccountid") or not event.get("intuitentityid"):
        raise DeliveryError(f"unreadable CloudEvent: type={event.get('type')!r}")
    entity, verb = match.group(1).lower(), match.group(2).lower()
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    return Notification(
        dedupe_key=f"ce:{event['id']}", realm_id=str(event["intuitaccountid"]),
        entity=ENTITIES.get(entity, entity.capitalize()), entity_id=str(event["intuitentityid"]),
        operation=OPERATIONS.get(verb, verb.capitalize()), occurred_at=parse_time(event.get("time")),
        deleted_id=_str(data.get("deletedid", data.get("deletedId"))))


def _classic(element) -> list[Notification]:
    if not isinstance(element, dict) or "realmId" not in element:
        raise DeliveryError("an eventNotifications element lacks realmId")
    realm = str(element["realmId"])
    entities = (element.get("dataChangeEvent") or {}).get("entities") or []
    out = []
    for e in entities:
        if not isinstance(e, dict) or not e.get("name") or not e.get("id") or not e.get("operation"):
            raise DeliveryError("an entity change lacks name, id or operation")
        operation = _CLASSIC.get(str(e["operation"]).lower(), str(e["operation"]))
        key = "|".join([realm, str(e["name"]), str(e["id"]), operation, str(e.get("lastUpdated", ""))])
        out.append(Notification(
            dedupe_key="legacy:" + hashlib.sha256(key.encode()).hexdigest(), realm_id=realm,
            entity=ENTITIES.get(str(e["name"]).lower(), str(e["name"])), entity_id=str(e["id"]),
            operation=operation, occurred_at=parse_time(e.get("lastUpdated")), deleted_id=_str(e.get("deletedId"))))
    return out


def _str(value) -> str | None:
    return None if value is None else str(value)
