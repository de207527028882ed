"""Per-realm counters exposed by ``GET /sim/{realm}/stats``."""

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

    def add(self, realm: str, key: str, amount: int = 1) -> None:
        self._counts[realm][key] += amount

    def for_realm(self, realm: str) -> dict[str, int]:
        counts = self._counts.get(realm, Counter())
        return {key: counts.get(key, 0) for key in KEYS}
