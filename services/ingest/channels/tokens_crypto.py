"""OAuth tokens at rest: AES-256-GCM with the realm id as associated data, so a
ciphertext moved to another realm's row does not decrypt. The first key encrypts;
every key decrypts, so a key can be rotated while old ciphertexts are re-encrypted
(``admin rotate-token-key``)."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class TokenCipher:
    def __init__(self, keys: list[bytes]):
        if not keys:
            raise ValueError("TokenCipher needs at least one key")
        self._aeads = [AESGCM(key) for key in keys]

    def encrypt(self, token: str, realm_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aeads[0].encrypt(nonce, token.encode(), realm_id.encode())

    def decrypt(self, blob: bytes, realm_id: str) -> str:
        blob = bytes(blob)
        for aead in self._aeads:
            try:
                return aead.decrypt(blob[:12], blob[12:], realm_id.encode()).decode()
            except (InvalidTag, ValueError):  # ValueError: too short to be one of ours
                continue
        raise InvalidTag("no configured TOKEN_ENCRYPTION_KEY decrypts this token")

    def is_current(self, blob: bytes, realm_id: str) -> bool:
        """Whether the first (current) key decrypts ``blob``: rotation skips such rows."""
        blob = bytes(blob)
        try:
            self._aeads[0].decrypt(blob[:12], blob[12:], realm_id.encode())
        except (InvalidTag, ValueError):
            return False
        return True
