"""The secrets a service cannot run without. None has a default: a service that needs
one and finds it missing or malformed refuses to start with one log line naming the
variable and how to make a value (``StartupError``; each service's ``main`` exits 2)."""

from __future__ import annotations

import base64
import binascii

from shared.startup import StartupError

GENERATE_KEY = 'python3 -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"'
GENERATE_SECRET = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'  # noqa: S105 - a command that makes one, not a secret
MIN_STATE_SECRET = 32


def _key(value: str, variable: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise StartupError(f"{variable} must be 32 random bytes, base64-encoded; generate one with: {GENERATE_KEY}")
    return key


def token_keys(current: str | None, old: str | None = None) -> list[bytes]:
    """TOKEN_ENCRYPTION_KEY first (it encrypts), then TOKEN_ENCRYPTION_OLD_KEYS (decrypt only)."""
    if not current or not current.strip():
        raise StartupError(f"TOKEN_ENCRYPTION_KEY is not set; generate one with: {GENERATE_KEY}")
    keys = [_key(current, "TOKEN_ENCRYPTION_KEY")]
    keys += [_key(k, "TOKEN_ENCRYPTION_OLD_KEYS") for k in (old or "").split(",") if k.strip()]
    return keys


def state_secret(value: str | None) -> bytes:
    if not value or not value.strip():
        raise StartupError(f"OAUTH_STATE_SECRET is not set; generate one with: {GENERATE_SECRET}")
    if len(value.strip()) < MIN_STATE_SECRET:
        raise StartupError(
            f"OAUTH_STATE_SECRET must be at least {MIN_STATE_SECRET} characters; generate one with: {GENERATE_SECRET}"
        )
    return value.strip().encode()
