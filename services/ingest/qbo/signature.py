"""Webhook authenticity: ``intuit-signature`` = base64(HMAC-SHA256(verifier token, raw body))."""

import base64
import hashlib
import hmac


def sign(body: bytes, verifier_token: str) -> str:
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, header: str | None, verifier_token: str | None) -> bool:
    """True only for a present header matching the raw bytes; constant-time compare."""
    if not header or not verifier_token:
        return False
    return hmac.compare_digest(sign(body, verifier_token).encode(), header.strip().encode())
