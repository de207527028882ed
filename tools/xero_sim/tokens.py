"""OAuth 2.0 grants, codes, tokens and connections (docs/xero.md §1), in memory.

One consent = one grant: an ``authEventId``, the scopes, and one connection per organisation the user ticked.
Access tokens live 30 minutes. With ``offline_access`` the grant has a refresh token that rotates on every use;
a rotated-away token keeps working for ``refresh_grace`` seconds (Xero: 30 minutes, for a lost response) and
each use of it rotates again. An unused refresh token expires after 60 days. Revoking a refresh token ends the
grant and removes its connections; ``DELETE /connections/{id}`` removes one.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tools.sim_common.tokens import AUTH_CODE_LIFETIME, expire_grants
from tools.xero_sim import timefmt


class OAuthError(Exception):
    def __init__(self, error: str, status: int = 400, tenants: tuple[str, ...] = ()):
        super().__init__(error)
        self.error, self.status, self.tenants = error, status, tenants


@dataclass
class Connection:
    id: str
    tenant_id: str
    tenant_name: str
    auth_event_id: str
    created: datetime
    updated: datetime
    tenant_type: str = "ORGANISATION"

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "authEventId": self.auth_event_id,
            "tenantId": self.tenant_id,
            "tenantType": self.tenant_type,
            "tenantName": self.tenant_name,
            "createdDateUtc": timefmt.iso_utc(self.created),
            "updatedDateUtc": timefmt.iso_utc(self.updated),
        }


@dataclass
class Grant:
    auth_event_id: str
    scopes: list[str]
    connections: dict[str, Connection]  # tenant id -> connection
    refresh_token: str | None
    refresh_expires: float
    retired: dict[str, float] = field(default_factory=dict)  # old refresh token -> when it was rotated away
    access: dict[str, float] = field(default_factory=dict)  # access token -> expiry
    revoked: bool = False

    @property
    def tenants(self) -> tuple[str, ...]:
        return tuple(self.connections)


@dataclass
class Code:
    tenants: dict[str, str]  # tenant id -> name
    redirect_uri: str
    scopes: list[str]
    expires: float


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _jwt(claims: dict[str, Any]) -> str:
    """Shaped like Xero's RS256 JWTs; the signature is random (nobody verifies it against the simulator)."""
    return f"{_b64({'alg': 'RS256', 'kid': 'sim', 'typ': 'JWT'})}.{_b64(claims)}.{secrets.token_urlsafe(64)}"


class TokenStore:
    def __init__(self, client_id: str, access_lifetime: int, refresh_lifetime: int, grace: int):
        self.client_id = client_id
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.grace = grace
        self._codes: dict[str, Code] = {}
        self._by_refresh: dict[str, Grant] = {}
        self._by_access: dict[str, Grant] = {}
        self.grants: list[Grant] = []

    def issue_code(self, tenants: dict[str, str], redirect_uri: str, scopes: list[str]) -> str:
        code = secrets.token_hex(32)
        self._codes[code] = Code(tenants, redirect_uri, scopes, time.time() + AUTH_CODE_LIFETIME)
        return code

    def exchange_code(self, code: str, redirect_uri: str | None) -> tuple[Grant, dict[str, Any]]:
        found = self._codes.pop(code, None)  # single use
        if found is None or found.expires < time.time() or redirect_uri != found.redirect_uri:
            raise OAuthError("invalid_grant")
        return self.mint(found.tenants, found.scopes)

    def mint(self, tenants: dict[str, str], scopes: list[str]) -> tuple[Grant, dict[str, Any]]:
        now = timefmt.now()
        event = str(uuid.uuid4())
        connections = {
            tenant: Connection(str(uuid.uuid4()), tenant, name, event, now, now) for tenant, name in tenants.items()
        }
        refresh = secrets.token_hex(32) if "offline_access" in scopes else None
        grant = Grant(event, scopes, connections, refresh, time.time() + self.refresh_lifetime)
        self.grants.append(grant)
        if refresh:
            self._by_refresh[refresh] = grant
        return grant, self._response(grant)

    def refresh(self, token: str) -> tuple[Grant, dict[str, Any]]:
        grant = self._by_refresh.get(token)
        now = time.time()
        if grant is None or grant.revoked or grant.refresh_expires < now:
            raise OAuthError("invalid_grant", tenants=grant.tenants if grant else ())
        if token != grant.refresh_token and now - grant.retired.get(token, 0) > self.grace:
            raise OAuthError("invalid_grant", tenants=grant.tenants)
        if grant.refresh_token is not None:
            grant.retired[grant.refresh_token] = now
        grant.refresh_token = secrets.token_hex(32)
        grant.refresh_expires = now + self.refresh_lifetime
        self._by_refresh[grant.refresh_token] = grant
        return grant, self._response(grant)

    def _response(self, grant: Grant) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "nbf": now,
            "exp": now + self.access_lifetime,
            "iss": "https://identity.xero.com",
            "aud": "https://identity.xero.com/resources",
            "client_id": self.client_id,
            "sub": "sim-user",
            "auth_time": now,
            "xero_userid": "sim-user",
            "global_session_id": secrets.token_hex(16),
            "jti": secrets.token_hex(16),
            "authentication_event_id": grant.auth_event_id,
            "scope": grant.scopes,
        }
        token = _jwt(claims)
        grant.access[token] = time.time() + self.access_lifetime
        self._by_access[token] = grant
        body: dict[str, Any] = {
            "id_token": _jwt({"sub": "sim-user", "aud": self.client_id, "iat": now, "exp": now + 300}),
            "access_token": token,
            "expires_in": self.access_lifetime,
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
        }
        if grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return body

    def grant_for_access(self, token: str) -> tuple[Grant | None, str]:
        """``(grant, verdict)``; verdict ``ok`` | ``unknown`` | ``expired``."""
        grant = self._by_access.get(token)
        if grant is None or grant.revoked:
            return None, "unknown"
        if grant.access.get(token, 0) <= time.time():
            return grant, "expired"
        return grant, "ok"

    def expire_tenant(self, tenant: str, refresh_tokens: bool = False) -> int:
        return expire_grants((grant for grant in self.grants if tenant in grant.connections), refresh_tokens)

    def revoke(self, token: str) -> bool:
        grant = self._by_refresh.get(token)
        if grant is None:
            return False
        grant.revoked = True
        grant.connections.clear()
        return True

    def disconnect(self, grant: Grant, connection_id: str) -> bool:
        for tenant, connection in list(grant.connections.items()):
            if connection.id == connection_id:
                del grant.connections[tenant]
                return True
        return False
