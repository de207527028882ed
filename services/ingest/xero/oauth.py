"""OAuth 2.0 with Xero (docs/xero.md §1): authorize URL (scopes incl. ``offline_access``), code
exchange and refresh at the token endpoint (client credentials as HTTP Basic), revocation of the
refresh token, and tenant discovery: ``GET /connections`` narrowed to this consent's
``authEventId`` (a claim of the access token), so organisations the same user linked before are
not re-linked by this consent. Access tokens live 30 minutes; refresh tokens rotate on every use
and the pipeline's TokenStore keeps the newest (encrypted, never logged)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp

from services.ingest.channels.provider import ReconnectRequired, Tokens
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("xero.oauth")
TENANT_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


def token_url(settings: Settings) -> str:
    return settings.xero_oauth_token_url or f"{settings.xero_identity_base.rstrip('/')}/connect/token"


def revoke_url(settings: Settings) -> str:
    return settings.xero_oauth_revoke_url or f"{settings.xero_identity_base.rstrip('/')}/connect/revocation"


def auth_event_id(access_token: str) -> str | None:
    """The ``authentication_event_id`` claim of Xero's JWT access token (read, not verified: the
    token came straight from Xero's token endpoint over TLS)."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    event = claims.get("authentication_event_id") if isinstance(claims, dict) else None
    return str(event) if event else None


class XeroOAuth:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings):
        self.session = session
        self.settings = settings

    def authorize_url(self, state: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.xero_client_id or "",
                "redirect_uri": self.settings.xero_redirect_uri,
                "scope": self.settings.xero_scopes,
                "state": state,
            }
        )
        return f"{self.settings.xero_oauth_authorize_url}?{query}"

    def validate_callback(self, query: Mapping[str, str]) -> bool:
        return True  # Xero's callback names no organisation: GET /connections does (accounts())

    def _headers(self) -> dict[str, str]:
        basic = aiohttp.encode_basic_auth(self.settings.xero_client_id or "", self.settings.xero_client_secret or "")
        return {"Accept": "application/json", "Authorization": basic}

    async def _token_call(self, form: dict[str, str]) -> Tokens:
        async with self.session.post(token_url(self.settings), data=form, headers=self._headers()) as response:
            body: Any = await response.json(content_type=None)
            if not isinstance(body, dict):
                body = {}
            if response.status == 400 and body.get("error") == "invalid_grant":
                raise ReconnectRequired("invalid_grant")
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    (),
                    status=response.status,
                    message=f"token endpoint: {body.get('error', response.status)}",
                )
        if not body.get("refresh_token"):
            raise ValueError("no refresh token (is offline_access among XERO_SCOPES?)")
        return Tokens(
            body["access_token"],
            body["refresh_token"],
            datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in", 1800))),
        )

    async def exchange_code(self, code: str) -> Tokens:
        return await self._token_call(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.xero_redirect_uri}
        )

    async def refresh(self, refresh_token: str) -> Tokens:
        return await self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, token: str) -> None:
        """Revoke the grant (Xero: the refresh token; it ends the user's connections)."""
        async with self.session.post(revoke_url(self.settings), data={"token": token}, headers=self._headers()) as r:
            if r.status >= 400:
                log.warning("xero.oauth.revoke_failed", status=r.status)

    async def accounts(self, query: Mapping[str, str], tokens: Tokens) -> list[str]:
        """The organisation this consent connected (``GET /connections?authEventId=``); the first
        one when the person ticked several (a connection is one organisation with its own tokens)."""
        params = {}
        event = auth_event_id(tokens.access_token)
        if event:
            params["authEventId"] = event
        url = f"{self.settings.xero_api_base.rstrip('/')}/connections"
        headers = {"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"}
        async with self.session.get(url, params=params, headers=headers) as response:
            if response.status != 200:
                raise ValueError(f"GET /connections answered {response.status}")
            body = await response.json(content_type=None)
        if not isinstance(body, list):
            raise ValueError("GET /connections did not answer a list")
        tenants = [
            str(c["tenantId"])
            for c in body
            if isinstance(c, dict)
            and str(c.get("tenantType", "ORGANISATION")).upper() == "ORGANISATION"
            and TENANT_ID.fullmatch(str(c.get("tenantId", "")))
        ]
        tenants = list(dict.fromkeys(tenants))
        if len(tenants) > 1:
            # One refresh token per consent: two organisations sharing it would each rotate it
            # away from the other. One organisation per connection (tick one on Xero's page).
            log.warning("xero.connect.several_organisations", linked=1, offered=len(tenants))
        return tenants[:1]
