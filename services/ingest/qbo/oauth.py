"""OAuth 2.0 with Intuit: authorize URL, code exchange, refresh, revoke, realm discovery
(the callback's ``realmId``). The pipeline's TokenStore (``services.ingest.channels.tokens``)
keeps the tokens: encrypted at rest, refreshed once for concurrent callers, never logged."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import aiohttp

from services.ingest.channels.provider import ReconnectRequired, Tokens
from services.ingest.channels.tokens import EARLY, TokenStore
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("qbo.oauth")
SCOPE = "com.intuit.quickbooks.accounting"
REALM_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # Intuit's are decimal digits
__all__ = ["EARLY", "OAuthClient", "ReconnectRequired", "TokenStore", "Tokens"]


class OAuthClient:
    """Talks to Intuit's token endpoints."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings):
        self.session = session
        self.settings = settings

    def authorize_url(self, state: str) -> str:
        query = urlencode(
            {
                "client_id": self.settings.qbo_client_id or "",
                "response_type": "code",
                "scope": SCOPE,
                "redirect_uri": self.settings.qbo_redirect_uri,
                "state": state,
            }
        )
        return f"{self.settings.qbo_oauth_authorize_url}?{query}"

    def validate_callback(self, query: Mapping[str, str]) -> bool:
        realm_id = query.get("realmId")
        return bool(realm_id and REALM_ID.fullmatch(realm_id))

    async def accounts(self, query: Mapping[str, str], tokens: Tokens) -> list[str]:
        """The realm the consent linked: Intuit names it in the callback (``realmId``)."""
        if not self.validate_callback(query):
            raise ValueError("no valid realmId")
        return [query["realmId"]]

    def _headers(self) -> dict[str, str]:
        basic = aiohttp.encode_basic_auth(self.settings.qbo_client_id or "", self.settings.qbo_client_secret or "")
        return {"Accept": "application/json", "Authorization": basic}

    async def _token_call(self, form: dict[str, str]) -> Tokens:
        async with self.session.post(self.settings.qbo_oauth_token_url, data=form, headers=self._headers()) as response:
            body = await response.json(content_type=None)
            if response.status == 400 and body.get("error") == "invalid_grant":
                raise ReconnectRequired("invalid_grant")
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    (),
                    status=response.status,
                    message=f"token endpoint: {body.get('error', response.status)}",
                )
        return Tokens(
            body["access_token"],
            body["refresh_token"],
            datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in", 3600))),
        )

    async def exchange_code(self, code: str) -> Tokens:
        return await self._token_call(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.qbo_redirect_uri}
        )

    async def refresh(self, refresh_token: str) -> Tokens:
        return await self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, token: str) -> None:
        async with self.session.post(
            self.settings.qbo_oauth_revoke_url, json={"token": token}, headers=self._headers()
        ) as response:
            if response.status >= 400:
                log.warning("qbo.oauth.revoke_failed", status=response.status)
