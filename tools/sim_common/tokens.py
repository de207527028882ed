"""What both simulators' token stores share: the authorization-code lifetime and expiring a set of grants
(``POST /sim/{account}/tokens/expire``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

#: Seconds an authorization code may wait to be exchanged (single use).
AUTH_CODE_LIFETIME = 300


class Grant(Protocol):
    #: access token -> expiry (epoch seconds)
    access: dict[str, float]
    refresh_expires: float


def expire_grants(grants: Iterable[Grant], refresh_tokens: bool = False) -> int:
    """Expire every access token of ``grants`` now (and their refresh tokens with ``refresh_tokens``);
    the number of access tokens expired."""
    count = 0
    for grant in grants:
        for token in grant.access:
            grant.access[token] = 0
            count += 1
        if refresh_tokens:
            grant.refresh_expires = 0
    return count
