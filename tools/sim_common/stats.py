"""Per-account counters (a QBO realm, a Xero tenant) exposed by ``GET /sim/{account}/stats``."""

from __future__ import annotations

from collections import Counter, defaultdict

KEYS = (
    "requests",
    "throttled",
    "token_refreshes",
    "token_refresh_failures",
    "webhooks_sent",
    "webhook_attempts",
    "webhook_failures",
    "webhooks_dropped",
    "webhooks_duplicated",
    "unauthorized",
)


class Stats:
    def __init__(self) -> None:
        self._counts: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def add(self, account: str, key: str, amount: int = 1) -> None:
        self._counts[account][key] += amount

    def for_account(self, account: str) -> dict[str, int]:
        counts = self._counts.get(account, Counter())
        return {key: counts.get(key, 0) for key in KEYS}
