"""Xero's rate limits (docs/xero.md §7): per tenant a minute limit, a day limit and a concurrent limit; per app a
minute limit across tenants. Windows are fixed (they start with the first call and reset as a whole), which is
how Xero describes them. A refused call does not count. ``X-Rate-Limit-Problem`` names the limit: ``minute``,
``day``, ``concurrent`` or ``appminute`` (the spelling is unconfirmed, docs/xero.md §7)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class _Window:
    length: float
    start: float = 0.0
    count: int = 0

    def roll(self, now: float) -> None:
        if now >= self.start + self.length:
            self.start, self.count = now, 0

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.start + self.length - now))


@dataclass
class Verdict:
    ok: bool
    problem: str | None = None
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Throttle:
    def __init__(
        self,
        per_minute: int,
        per_day: int,
        concurrent: int,
        app_per_minute: int,
        minute_window: float = 60.0,
        day_window: float = 86_400.0,
    ):
        self.per_minute, self.per_day, self.concurrent, self.app_per_minute = (
            per_minute,
            per_day,
            concurrent,
            app_per_minute,
        )
        self.minute_window, self.day_window = minute_window, day_window
        self._minute: dict[str, _Window] = {}
        self._day: dict[str, _Window] = {}
        self._app = _Window(minute_window)
        self._in_flight: dict[str, int] = {}

    def _windows(self, tenant: str, now: float) -> tuple[_Window, _Window]:
        minute = self._minute.setdefault(tenant, _Window(self.minute_window))
        day = self._day.setdefault(tenant, _Window(self.day_window))
        for window in (minute, day, self._app):
            window.roll(now)
        return minute, day

    def _headers(self, minute: _Window, day: _Window) -> dict[str, str]:
        return {
            "X-DayLimit-Remaining": str(max(0, self.per_day - day.count)),
            "X-MinLimit-Remaining": str(max(0, self.per_minute - minute.count)),
            "X-AppMinLimit-Remaining": str(max(0, self.app_per_minute - self._app.count)),
        }

    def admit(self, tenant: str) -> Verdict:
        now = time.monotonic()
        minute, day = self._windows(tenant, now)
        problem: str | None = None
        retry: int | None = None
        if day.count >= self.per_day:
            problem, retry = "day", day.retry_after(now)
        elif minute.count >= self.per_minute:
            problem, retry = "minute", minute.retry_after(now)
        elif self._app.count >= self.app_per_minute:
            problem, retry = "appminute", self._app.retry_after(now)
        elif self._in_flight.get(tenant, 0) >= self.concurrent:
            problem = "concurrent"
        if problem is not None:
            return Verdict(False, problem, retry, self._headers(minute, day))
        for window in (minute, day, self._app):
            window.count += 1
        self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
        return Verdict(True, headers=self._headers(minute, day))

    def release(self, tenant: str) -> None:
        self._in_flight[tenant] = self._in_flight.get(tenant, 1) - 1

    def reset(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._minute.clear()
            self._day.clear()
            self._app = _Window(self.minute_window)
        else:
            self._minute.pop(tenant, None)
            self._day.pop(tenant, None)
