"""Opaque keyset cursors: base64url (unpadded) JSON of the position after which the
next page starts. Clients pass back the ``next_cursor`` they were given; anything
else is rejected as an invalid parameter (never trusted, never a 500)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

MAX_CURSOR_LENGTH = 4096
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


class CursorError(ValueError):
    pass


def encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(cursor: str) -> dict[str, Any]:
    """The payload of a cursor made by ``encode``, or CursorError."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not re.fullmatch(CURSOR_PATTERN, cursor):
        raise CursorError("not a cursor from this API")
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (UnicodeError, binascii.Error, ValueError) as exc:
        raise CursorError("not a cursor from this API") from exc
    if not isinstance(payload, dict):
        raise CursorError("not a cursor from this API")
    return payload
