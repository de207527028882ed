"""The Xero Accounting API client (docs/xero.md §3–§8): documents by id and the
``If-Modified-Since`` listings with paging (lines come only with ``page``), ``unitdp=4``,
JSON (``Accept: application/json``), every call naming its organisation (``xero-tenant-id``).

Limits per organisation: at most ``XERO_RATE_PER_MINUTE`` calls a minute and
``XERO_MAX_CONCURRENT`` in flight, held by our side; a 429 is backed off for its
``Retry-After`` (jittered, exponential when absent) and retried; a 429 for the day limit (or a
``Retry-After`` longer than ``XERO_MAX_RETRY_AFTER_SECONDS``) fails the call with
``XeroRateLimited`` (the catch-up records it and retries later, nothing is lost). 5xx are
retried with back-off; a 401 refreshes the token once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter
from prometheus_client import Counter

from services.ingest.channels.tokens import TokenStore
from shared.aio import random_fraction
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("xero.client")
REQUESTS = Counter("xero_api_requests_total", "Xero API requests by outcome", ["outcome"])
COLLECTIONS = {
    "Invoice": "Invoices",
    "CreditNote": "CreditNotes",
    "BankTransaction": "BankTransactions",
    "Item": "Items",
}
PAGE_SIZE = 100


class XeroError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(f"Xero answered {status}: {detail[:300]}")
        self.status = status


class XeroRateLimited(XeroError):
    """Over a limit that does not reset soon (the day limit): try again later."""

    def __init__(self, problem: str, retry_after: float | None):
        super().__init__(429, f"rate limit {problem!r} reached, retry after {retry_after} s")
        self.problem, self.retry_after = problem, retry_after


def if_modified_since(moment: datetime) -> str:
    """Xero's header value: UTC, to the second, no offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class XeroClient:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings, tokens: TokenStore, max_attempts: int = 8):
        self.session = session
        self.settings = settings
        self.tokens = tokens
        self.max_attempts = max_attempts
        self._limiters: dict[str, tuple[AsyncLimiter, asyncio.Semaphore]] = {}

    def _limits(self, tenant: str) -> tuple[AsyncLimiter, asyncio.Semaphore]:
        if tenant not in self._limiters:
            self._limiters[tenant] = (
                AsyncLimiter(self.settings.xero_rate_per_minute, 60),
                asyncio.Semaphore(self.settings.xero_max_concurrent),
            )
        return self._limiters[tenant]

    async def get(
        self, tenant: str, path: str, params: dict[str, str] | None = None, since: datetime | None = None
    ) -> tuple[int, Any]:
        """(HTTP status, the decoded JSON answer or the text) of ``GET /api.xro/2.0/<path>``."""
        url = f"{self.settings.xero_api_base.rstrip('/')}/api.xro/2.0/{path}"
        limiter, concurrent = self._limits(tenant)
        refreshed = False
        status, text = 0, ""
        for attempt in range(1, self.max_attempts + 1):
            token = await self.tokens.access_token(tenant)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "xero-tenant-id": tenant}
            if since is not None:
                headers["If-Modified-Since"] = if_modified_since(since)
            async with concurrent, limiter, self.session.get(url, params=params or {}, headers=headers) as response:
                status, text = response.status, await response.text()
                retry_after = response.headers.get("Retry-After")
                problem = response.headers.get("X-Rate-Limit-Problem", "")
            if status == 401 and not refreshed:
                REQUESTS.labels("unauthorized").inc()
                await self.tokens.refresh(tenant, stale=token)
                refreshed = True
                continue
            if status == 429 or status >= 500:
                REQUESTS.labels("throttled" if status == 429 else "server_error").inc()
                wait = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
                if status == 429 and (
                    problem.lower() == "day" or (wait is not None and wait > self.settings.xero_max_retry_after_seconds)
                ):
                    log.warning("xero.api.limit_reached", tenant=tenant, problem=problem, retry_after=wait)
                    raise XeroRateLimited(problem or "unknown", wait)
                delay = wait if wait is not None else min(30.0, 0.25 * 2**attempt)
                log.warning("xero.api.backoff", status=status, tenant=tenant, problem=problem or None, delay=delay)
                await asyncio.sleep(delay * (1 + random_fraction() / 4))
                continue
            REQUESTS.labels("ok" if status == 200 else str(status)).inc()
            if status == 404:
                return status, text
            try:
                return status, json.loads(text, parse_float=Decimal)
            except ValueError as exc:
                raise XeroError(status, text) from exc
        raise XeroError(status, text)

    async def read(self, tenant: str, entity: str, entity_id: str) -> dict[str, Any] | None:
        """The document with its lines; None when Xero does not know it (404)."""
        status, body = await self.get(tenant, f"{COLLECTIONS[entity]}/{entity_id}", {"unitdp": "4"})
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise XeroError(status, json.dumps(body, default=str))
        found = body.get(COLLECTIONS[entity]) or []
        return found[0] if found else None

    async def changed(
        self, tenant: str, entity: str, since: datetime, where: str | None = None, statuses: str | None = None
    ) -> list[dict[str, Any]]:
        """Every document of ``entity`` changed since ``since`` (If-Modified-Since), page by page
        (with lines), oldest change first."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"page": str(page), "pageSize": str(PAGE_SIZE), "unitdp": "4", "order": "UpdatedDateUTC ASC"}
            if where:
                params["where"] = where
            if statuses:
                params["Statuses"] = statuses
            status, body = await self.get(tenant, COLLECTIONS[entity], params, since=since)
            if status != 200 or not isinstance(body, dict) or str(body.get("Status", "OK")).upper() != "OK":
                raise XeroError(status, json.dumps(body, default=str))
            rows = body.get(COLLECTIONS[entity]) or []
            found.extend(rows)
            pagination = body.get("pagination") or {}
            page_count = int(pagination.get("pageCount") or 0)
            if len(rows) < PAGE_SIZE or (page_count and page >= page_count):
                return found
            page += 1

    async def items(self, tenant: str, since: datetime) -> list[dict[str, Any]]:
        status, body = await self.get(tenant, "Items", {"unitdp": "4"}, since=since)
        if status != 200 or not isinstance(body, dict):
            raise XeroError(status, json.dumps(body, default=str))
        return list(body.get("Items") or [])
