"""Xero's time formats: MS-JSON ``/Date(1539993600000+0000)/`` for dates and timestamps, ``DateString``
(``2026-07-01T00:00:00``), ``eventDateUtc`` without an offset, and the ``If-Modified-Since`` header."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # Xero keeps milliseconds


def ms_json(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def date_json(day: date) -> str:
    return ms_json(datetime.combine(day, time(), UTC))


def date_string(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def event_time(moment: datetime) -> str:
    """``2025-12-02T00:44:09.923`` (UTC, no offset)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def iso_utc(moment: datetime) -> str:
    """``/connections`` style: ``2019-12-07T18:46:19.5165400``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


def parse_if_modified_since(value: str) -> datetime:
    """``2026-07-01T00:00:00`` (UTC; an offset or ``Z`` is honoured) or an HTTP date."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from email.utils import parsedate_to_datetime

        moment = parsedate_to_datetime(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def days_ago(days: int) -> date:
    return (datetime.now(UTC) - timedelta(days=days)).date()
