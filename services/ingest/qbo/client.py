"""The QuickBooks Online API client: entity reads, CDC and queries for one realm,
within Intuit's limits (requests per minute and concurrent requests per realm),
backing off on 429 and 5xx, refreshing the token once on 401."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter
from prometheus_client import Counter

from services.ingest.qbo.oauth import TokenStore
from shared.aio import random_fraction
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("qbo.client")
REQUESTS = Counter("qbo_api_requests_total", "QuickBooks API requests by outcome", ["outcome"])
MINOR_VERSION = "75"
PATHS = {"Invoice": "invoice", "SalesReceipt": "salesreceipt", "CreditMemo": "creditmemo", "Item": "item"}


class QboError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(f"QuickBooks answered {status}: {detail[:300]}")
        self.status = status


class QboFault(QboError):
    """QuickBooks answered (even with HTTP 200) with a ``Fault`` instead of data."""


def _describe(fault: object) -> str:
    if not isinstance(fault, dict):
        return str(fault)[:300]
    errors = fault.get("Error") or fault.get("error") or []
    parts = [
        f"{e.get('code')} {e.get('Message') or e.get('message') or ''}: "
        f"{e.get('Detail') or e.get('detail') or ''}".strip()
        for e in errors
        if isinstance(e, dict)
    ]
    return f"{fault.get('type') or 'Fault'} " + ("; ".join(parts) or "(no detail)")


def cdc_fault(body: object) -> str | None:
    """The Fault a CDC answer carries, in the envelope (``Fault``, or the gateway's
    lower-case ``fault``) or inside a ``CDCResponse`` element; None if there is none.
    Such an answer holds no changes for its window (docs/quickbooks-api.md §2.4a)."""
    if not isinstance(body, dict):
        return "not a JSON object"
    for key in ("Fault", "fault"):
        if body.get(key):
            return _describe(body[key])
    for response in body.get("CDCResponse") or []:
        if isinstance(response, dict) and (response.get("Fault") or response.get("fault")):
            return _describe(response.get("Fault") or response.get("fault"))
        for query in (response.get("QueryResponse") or []) if isinstance(response, dict) else []:
            if isinstance(query, dict) and (query.get("Fault") or query.get("fault")):
                return _describe(query.get("Fault") or query.get("fault"))
    return None


class QboClient:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings, tokens: TokenStore, max_attempts: int = 6):
        self.session = session
        self.settings = settings
        self.tokens = tokens
        self.max_attempts = max_attempts
        self._limiters: dict[str, tuple[AsyncLimiter, asyncio.Semaphore]] = {}

    def _limits(self, realm_id: str) -> tuple[AsyncLimiter, asyncio.Semaphore]:
        if realm_id not in self._limiters:
            self._limiters[realm_id] = (
                AsyncLimiter(self.settings.qbo_rate_per_minute, 60),
                asyncio.Semaphore(self.settings.qbo_max_concurrent),
            )
        return self._limiters[realm_id]

    async def _get(self, realm_id: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """(HTTP status, the decoded JSON answer)."""
        url = f"{self.settings.qbo_api_base.rstrip('/')}/v3/company/{realm_id}/{path}"
        params = {**params, "minorversion": MINOR_VERSION}
        limiter, concurrent = self._limits(realm_id)
        refreshed = False
        for attempt in range(1, self.max_attempts + 1):
            token = await self.tokens.access_token(realm_id)
            async with (
                concurrent,
                limiter,
                self.session.get(
                    url, params=params, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
                ) as response,
            ):
                status, text = response.status, await response.text()
                retry_after = response.headers.get("Retry-After")
            if status == 401 and not refreshed:
                REQUESTS.labels("unauthorized").inc()
                await self.tokens.refresh(realm_id, stale=token)
                refreshed = True
                continue
            if status == 429 or status >= 500:
                REQUESTS.labels("throttled" if status == 429 else "server_error").inc()
                delay = float(retry_after) if retry_after and retry_after.isdigit() else min(30.0, 0.5 * 2**attempt)
                log.warning("qbo.api.backoff", status=status, realm=realm_id, delay=delay)
                await asyncio.sleep(delay * (0.75 + random_fraction() / 2))
                continue
            REQUESTS.labels("ok" if status == 200 else str(status)).inc()
            try:
                return status, json.loads(text, parse_float=Decimal)
            except ValueError as exc:
                raise QboError(status, text) from exc
        raise QboError(status, text)

    async def read(self, realm_id: str, entity: str, entity_id: str) -> dict[str, Any] | None:
        """The entity, or None when QuickBooks says it does not exist (Fault 610: deleted)."""
        status, body = await self._get(realm_id, f"{PATHS[entity]}/{entity_id}", {})
        if status == 200:
            found: dict[str, Any] = body[entity]
            return found
        errors = (body.get("Fault") or {}).get("Error") or []
        if any(str(e.get("code")) == "610" for e in errors):
            return None
        raise QboError(status, json.dumps(body, default=str))

    async def cdc(
        self, realm_id: str, entities: list[str], since: datetime
    ) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        """Changed entities since ``since`` (≤ 30 days), by entity name, and the server time."""
        status, body = await self._get(
            realm_id, "cdc", {"entities": ",".join(entities), "changedSince": since.isoformat()}
        )
        if status != 200:
            raise QboError(status, json.dumps(body, default=str))
        fault = cdc_fault(body)
        if fault is not None:  # 200 with a Fault: no changes known for this window
            REQUESTS.labels("fault").inc()
            raise QboFault(status, f"CDC fault: {fault}")
        changed: dict[str, list[dict[str, Any]]] = {name: [] for name in entities}
        for response in body.get("CDCResponse") or []:
            for query in response.get("QueryResponse") or []:
                for name in entities:
                    changed[name].extend(query.get(name) or [])
        return changed, body.get("time")

    async def query_changed(
        self, realm_id: str, entity: str, since: datetime, page: int = 1000
    ) -> list[dict[str, Any]]:
        """All ``entity`` changed after ``since`` through the query endpoint (no 30-day limit)."""
        found: list[dict[str, Any]] = []
        start = 1
        while True:
            query = (
                f"select * from {entity} where MetaData.LastUpdatedTime > '{since.isoformat()}' "
                f"orderby MetaData.LastUpdatedTime startposition {start} maxresults {page}"
            )
            status, body = await self._get(realm_id, "query", {"query": query})
            if status != 200:
                raise QboError(status, json.dumps(body, default=str))
            rows = (body.get("QueryResponse") or {}).get(entity) or []
            found.extend(rows)
            if len(rows) < page:
                return found
            start += page
