"""OAuth tokens at rest: AES-256-GCM with the realm id as associated data, so a
ciphertext moved to another realm's row does not decrypt."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.logging import get_logger

log = get_logger("qbo.tokens")
_DEV_KEY = hashlib.sha256(b"partsemble development token key - never in production").digest()


class TokenCipher:
    def __init__(self, key_b64: str | None):
        if key_b64:
            key = base64.b64decode(key_b64)
            if len(key) != 32:
                raise ValueError("TOKEN_ENCRYPTION_KEY must be 32 bytes, base64-encoded")
        else:
            log.warning("qbo.tokens.development_key", hint="set TOKEN_ENCRYPTION_KEY in production")
            key = _DEV_KEY
        self._aead = AESGCM(key)

    def encrypt(self, token: str, realm_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, token.encode(), realm_id.encode())

    def decrypt(self, blob: bytes, realm_id: str) -> str:
        blob = bytes(blob)
        return self._aead.decrypt(blob[:12], blob[12:], realm_id.encode()).decode()
