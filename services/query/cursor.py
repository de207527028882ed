"""Opaque keyset cursors: base64url (unpadded) JSON of the position after which the
next page starts. Clients pass back the ``next_cursor`` they were given; anything
else is a 400 ``{"error": "invalid_cursor", "detail": "invalid cursor"}`` (never
trusted, never a 500, never a database error): the payload's shape, types and
ranges are checked in full (services/query/params.py) before any of it reaches SQL."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from shared.web import ApiError

MAX_CURSOR_LENGTH = 4096
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


class CursorError(ValueError):
    pass


def invalid_cursor() -> ApiError:
    """The one answer to any cursor this API did not make (or no longer accepts)."""
    return ApiError(400, "invalid_cursor", "invalid cursor")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a cursor value")


def encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(cursor: str) -> dict[str, Any]:
    """The payload of a cursor made by ``encode``, or CursorError."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not re.fullmatch(CURSOR_PATTERN, cursor):
        raise CursorError("not a cursor from this API")
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        payload = json.loads(raw, parse_constant=_no_constant)
    except (UnicodeError, binascii.Error, ValueError, RecursionError) as exc:
        raise CursorError("not a cursor from this API") from exc
    if not isinstance(payload, dict):
        raise CursorError("not a cursor from this API")
    return payload
