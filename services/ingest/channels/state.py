"""The OAuth ``state`` of every provider's connect flow: signed, short-lived, single-use
and bound to the browser that started the flow. ``domain`` separates the providers'
states (a QuickBooks state, domain ``qbo``, is no Xero state).

``make_state`` signs (HMAC-SHA256, OAUTH_STATE_SECRET) the tenant, a random nonce, the
expiry and the SHA-256 of the random browser secret that the connect response puts in
an HttpOnly cookie. The nonce's hash is stored in ``oauth_states`` (migration 0018) and
consumed by the callback, so a state links a company at most once.
``read_state`` answers the state's content or raises ``StateError`` with a reason code
(missing_state, malformed_state, bad_signature, expired_state); it checks neither the
cookie nor the database: the callback does (``browser_matches``, ``oauth_states``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass

TTL = 10 * 60  # seconds a state (and its cookie) is valid; at most 10 minutes
MAX_LENGTH = 1024  # a state we made is ~250 characters; anything much longer is not ours


class StateError(Exception):
    """A state that is missing, malformed, forged or expired; ``reason`` is a log code."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class State:
    tenant_id: uuid.UUID
    nonce: str
    expires_at: int  # Unix time
    browser_hash: bytes  # SHA-256 of the browser secret (the cookie's value)


def new_secret() -> str:
    """A random single-use value (a nonce or a browser secret): 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> bytes:
    """What is stored or signed in place of a nonce or browser secret."""
    return hashlib.sha256(value.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str, domain: str = "qbo") -> str:
    label = f"{domain}-connect-state\x00".encode()
    return _b64(hmac.new(secret, label + payload.encode(), hashlib.sha256).digest())


def make_state(
    tenant_id: uuid.UUID,
    nonce: str,
    browser_hash: bytes,
    secret: bytes,
    expires_at: int | None = None,
    domain: str = "qbo",
) -> str:
    """The signed state; ``secret`` is ``shared.secrets.state_secret(OAUTH_STATE_SECRET)``."""
    if not isinstance(secret, bytes) or not secret:
        raise TypeError("the state secret is required (bytes)")
    expires = int(time.time()) + TTL if expires_at is None else expires_at
    payload = _b64(
        json.dumps(
            {"t": str(tenant_id), "n": nonce, "e": expires, "b": _b64(browser_hash)}, separators=(",", ":")
        ).encode()
    )
    return f"{payload}.{_mac(secret, payload, domain)}"


def read_state(state: str | None, secret: bytes, now: float | None = None, domain: str = "qbo") -> State:
    """The content of a genuine, unexpired state; ``StateError`` otherwise."""
    if not isinstance(secret, bytes) or not secret:
        raise TypeError("the state secret is required (bytes)")
    if not state:
        raise StateError("missing_state")
    if len(state) > MAX_LENGTH or state.count(".") != 1:
        raise StateError("malformed_state")
    payload, mac = state.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(secret, payload, domain).encode()):
        raise StateError("bad_signature")
    try:
        data = json.loads(_unb64(payload))
        parsed = State(uuid.UUID(data["t"]), str(data["n"]), int(data["e"]), _unb64(data["b"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise StateError("malformed_state") from None
    if parsed.expires_at <= (time.time() if now is None else now):
        raise StateError("expired_state")
    return parsed


def browser_matches(state: State, cookie: str | None) -> bool:
    """Whether the callback's browser holds the secret the state was bound to."""
    if not cookie:
        return False
    return hmac.compare_digest(digest(cookie), state.browser_hash)
