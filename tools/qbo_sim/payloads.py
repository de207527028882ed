"""Webhook bodies (docs/quickbooks-api.md §1.2, §1.3) and the ``intuit-signature`` (§1.4).

CloudEvents ``type`` = ``qbo.<entity lower-case>.<word>.v1`` with words created / updated / deleted /
merged / emailed and, for a void, the configured spelling (``voided`` by default, or ``void``; docs/quickbooks-api.md
leaves it unresolved). Merge events carry ``data: {"deletedid": …}``; SalesReceipt updates carry no
``data`` and no ``datacontenttype`` (as on Intuit's data-objects page); everything else ``data: {}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tools.qbo_sim import timefmt

EVENT_WORDS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged", "Emailed": "emailed"}


@dataclass
class Event:
    realm: str
    entity: str
    entity_id: str
    operation: str
    time: datetime
    deleted_id: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def event_type(event: Event, void_word: str) -> str:
    word = void_word if event.operation == "Void" else EVENT_WORDS[event.operation]
    return f"qbo.{event.entity.lower()}.{word}.v1"


def source_for(client_id: str) -> str:
    digest = base64.b64encode(hashlib.sha256(client_id.encode()).digest()).decode()
    return f"intuit.{digest}"


def cloudevents(events: list[Event], void_word: str, source: str) -> list[dict[str, Any]]:
    out = []
    for event in events:
        body: dict[str, Any] = {
            "specversion": "1.0",
            "id": event.id,
            "source": source,
            "type": event_type(event, void_word),
            "datacontenttype": "application/json",
            "time": timefmt.cloudevent_time(event.time),
            "intuitentityid": event.entity_id,
            "intuitaccountid": event.realm,
        }
        if event.operation == "Merge":
            body["data"] = {"deletedid": event.deleted_id}
        elif event.entity == "SalesReceipt" and event.operation == "Update":
            del body["datacontenttype"]
        else:
            body["data"] = {}
        out.append(body)
    return out


def legacy(events: list[Event]) -> dict[str, Any]:
    by_realm: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for event in events:
        entity = {
            "name": event.entity,
            "id": event.entity_id,
            "operation": event.operation,
            "lastUpdated": timefmt.legacy_time(event.time),
        }
        if event.deleted_id is not None:
            entity["deletedId"] = event.deleted_id
        by_realm.setdefault(event.realm, []).append(entity)
    return {
        "eventNotifications": [
            {"realmId": realm, "dataChangeEvent": {"entities": entities}} for realm, entities in by_realm.items()
        ]
    }


def encode(events: list[Event], fmt: str, void_word: str, source: str) -> bytes:
    payload = cloudevents(events, void_word, source) if fmt == "cloudevents" else legacy(events)
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, verifier_token: str) -> str:
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()
