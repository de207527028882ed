"""Webhook bodies and the ``x-xero-signature`` (docs/xero.md §2.2–§2.4).

A delivery is ``{"events":[…],"firstEventSequence":n,"lastEventSequence":m,"entropy":"…"}``; each event has
``resourceUrl``, ``resourceId``, ``eventDateUtc`` (UTC, milliseconds, no offset), ``eventType`` CREATE/UPDATE,
``eventCategory`` INVOICE/CREDITNOTE, ``tenantId``, ``tenantType`` ORGANISATION; credit-note events add
``data: {Type, Status}``. An intent-to-receive request has no events and sequence numbers 0.
The signature is base64(HMAC-SHA256(webhook key, raw body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tools.xero_sim import timefmt

API_BASE = "https://api.xero.com/api.xro/2.0"
COLLECTION = {"INVOICE": "Invoices", "CREDITNOTE": "CreditNotes"}


@dataclass
class Event:
    tenant: str
    category: str  # INVOICE | CREDITNOTE
    resource_id: str
    event_type: str  # CREATE | UPDATE
    time: datetime
    data: dict[str, str] | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))  # ours, for the delivery log

    def render(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resourceUrl": f"{API_BASE}/{COLLECTION[self.category]}/{self.resource_id}",
            "resourceId": self.resource_id,
            "tenantId": self.tenant,
            "tenantType": "ORGANISATION",
            "eventCategory": self.category,
            "eventType": self.event_type,
            "eventDateUtc": timefmt.event_time(self.time),
        }
        if self.data is not None:
            body["data"] = dict(self.data)
        return body


def entropy(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(20))


def encode(events: list[Event], first: int, last: int, rng: random.Random) -> bytes:
    body = {
        "events": [event.render() for event in events],
        "firstEventSequence": first,
        "lastEventSequence": last,
        "entropy": entropy(rng),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def intent_to_receive(rng: random.Random) -> bytes:
    body = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": entropy(rng)}
    return json.dumps(body, separators=(",", ":")).encode()


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
