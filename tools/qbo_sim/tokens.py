"""OAuth 2.0 grants, codes and tokens (docs/quickbooks-api.md §4), in memory.

Refresh tokens rotate: every refresh returns a new refresh token and the used one becomes
invalid at once (no grace period), so two concurrent refreshes with the same token get one
success and one ``invalid_grant`` — what single-flight refresh in a client must avoid.
Access tokens stay valid until they expire even after a refresh; revoking either token of a
grant revokes the whole grant.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tools.sim_common.tokens import AUTH_CODE_LIFETIME, expire_grants

HARD_LIFETIME = 5 * 365 * 86400  # 5-year hard maximum per authorization


class OAuthError(Exception):
    def __init__(self, error: str, status: int = 400, realm: str | None = None):
        super().__init__(error)
        self.error, self.status, self.realm = error, status, realm


def _access_token() -> str:
    # Intuit access tokens are long JWE strings; keep ours long too (column sizes!).
    return "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + secrets.token_urlsafe(600)


def _refresh_token() -> str:
    return "AB11" + secrets.token_hex(24)


@dataclass
class Grant:
    realm: str
    refresh_token: str
    refresh_expires: float
    hard_expires: float
    access: dict[str, float] = field(default_factory=dict)
    revoked: bool = False


@dataclass
class Code:
    realm: str
    redirect_uri: str
    expires: float


class TokenStore:
    def __init__(self, access_lifetime: int, refresh_lifetime: int):
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self._codes: dict[str, Code] = {}
        self._by_refresh: dict[str, Grant] = {}
        self._by_access: dict[str, Grant] = {}
        self._grants: list[Grant] = []
        #: Used (rotated-away) refresh tokens -> realm, so failed refresh calls are attributed.
        self._retired: dict[str, str] = {}

    def issue_code(self, realm: str, redirect_uri: str) -> str:
        code = "AB1" + secrets.token_urlsafe(30)
        self._codes[code] = Code(realm, redirect_uri, time.time() + AUTH_CODE_LIFETIME)
        return code

    def exchange_code(self, code: str, redirect_uri: str | None) -> tuple[Grant, dict[str, Any]]:
        found = self._codes.pop(code, None)  # single use
        if found is None or found.expires < time.time():
            raise OAuthError("invalid_grant")
        if redirect_uri != found.redirect_uri:
            raise OAuthError("invalid_grant")
        return self.mint(found.realm)

    def mint(self, realm: str) -> tuple[Grant, dict[str, Any]]:
        now = time.time()
        grant = Grant(realm, _refresh_token(), now + self.refresh_lifetime, now + HARD_LIFETIME)
        self._grants.append(grant)
        self._by_refresh[grant.refresh_token] = grant
        return grant, self._response(grant)

    def refresh(self, refresh_token: str) -> tuple[Grant, dict[str, Any]]:
        grant = self._by_refresh.get(refresh_token)
        now = time.time()
        if grant is None or grant.revoked or grant.refresh_expires < now or grant.hard_expires < now:
            realm = grant.realm if grant else self._retired.get(refresh_token)
            raise OAuthError("invalid_grant", realm=realm)
        del self._by_refresh[refresh_token]
        self._retired[refresh_token] = grant.realm
        grant.refresh_token = _refresh_token()
        grant.refresh_expires = min(now + self.refresh_lifetime, grant.hard_expires)
        self._by_refresh[grant.refresh_token] = grant
        return grant, self._response(grant)

    def _response(self, grant: Grant) -> dict[str, Any]:
        token = _access_token()
        grant.access[token] = time.time() + self.access_lifetime
        self._by_access[token] = grant
        return {
            "token_type": "bearer",
            "access_token": token,
            "expires_in": self.access_lifetime,
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": int(grant.refresh_expires - time.time()),
        }

    def check(self, access_token: str, realm: str) -> str:
        """``ok`` | ``unknown`` | ``expired`` | ``wrong_realm``."""
        grant = self._by_access.get(access_token)
        if grant is None or grant.revoked:
            return "unknown"
        if grant.access.get(access_token, 0) <= time.time():
            return "expired"
        return "ok" if grant.realm == realm else "wrong_realm"

    def expire_realm(self, realm: str, refresh_tokens: bool = False) -> int:
        return expire_grants((grant for grant in self._grants if grant.realm == realm), refresh_tokens)

    def revoke_realm(self, realm: str) -> int:
        """Revoke every grant of the realm (the user disconnected the app in QuickBooks)."""
        count = 0
        for grant in self._grants:
            if grant.realm == realm and not grant.revoked:
                grant.revoked = True
                self._by_refresh.pop(grant.refresh_token, None)
                count += 1
        return count

    def revoke(self, token: str) -> bool:
        grant = self._by_refresh.get(token) or self._by_access.get(token)
        if grant is None:
            return False
        grant.revoked = True
        self._by_refresh.pop(grant.refresh_token, None)
        return True
