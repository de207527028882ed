"""The signed OAuth ``state``: which tenant started a connection, valid 15 minutes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid

_DEV_SECRET = b"partsemble development state secret - never in production"
TTL = 15 * 60


def _key(secret: str | None) -> bytes:
    return secret.encode() if secret else _DEV_SECRET


def make_state(tenant_id: uuid.UUID, secret: str | None) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(
        {"t": str(tenant_id), "n": secrets.token_hex(8), "e": int(time.time()) + TTL}).encode()).decode()
    mac = hmac.new(_key(secret), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def read_state(state: str, secret: str | None) -> uuid.UUID | None:
    """The tenant of a genuine, unexpired state; None otherwise."""
    payload, _, mac = state.partition(".")
    expected = hmac.new(_key(secret), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload))
        return uuid.UUID(data["t"]) if data["e"] >= time.time() else None
    except (ValueError, KeyError, TypeError):
        return None
