"""Per-realm throttling (docs/quickbooks-api.md §5.3): a sliding one-minute window of admitted requests and
a count of requests in flight. Throttled requests are not counted in the window."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class Throttle:
    def __init__(self, rate_per_minute: int, max_concurrent: int, window: float = 60.0):
        self.rate_per_minute = rate_per_minute
        self.max_concurrent = max_concurrent
        self.window = window
        self._admitted: defaultdict[str, deque[float]] = defaultdict(deque)
        self._in_flight: defaultdict[str, int] = defaultdict(int)

    def admit(self, realm: str) -> bool:
        now = time.monotonic()
        admitted = self._admitted[realm]
        while admitted and admitted[0] <= now - self.window:
            admitted.popleft()
        if len(admitted) >= self.rate_per_minute or self._in_flight[realm] >= self.max_concurrent:
            return False
        admitted.append(now)
        self._in_flight[realm] += 1
        return True

    def release(self, realm: str) -> None:
        self._in_flight[realm] -= 1

    def reset(self, realm: str | None = None) -> None:
        if realm is None:
            self._admitted.clear()
        else:
            self._admitted.pop(realm, None)
