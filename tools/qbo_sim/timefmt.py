"""Time formats QBO uses, all from aware UTC datetimes kept internally.

- entity ``MetaData`` times: company-local with offset, whole seconds (``2015-07-24T10:35:08-07:00``);
- response envelope ``time``: company-local with milliseconds (``2016-04-13T07:52:34.949-07:00``);
- CloudEvents ``time``: UTC with nanoseconds; legacy ``lastUpdated``: UTC with milliseconds.

Comparisons (CDC ``changedSince``, query ``WHERE MetaData.LastUpdatedTime > …``) use the full internal
precision, so a change later in the same second as a watermark is still returned.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone


def now() -> datetime:
    return datetime.now(UTC)


def parse_offset(offset: str) -> timezone:
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = offset.lstrip("+-").split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def entity_time(moment: datetime, tz: timezone) -> str:
    return moment.astimezone(tz).replace(microsecond=0).isoformat()


def response_time(moment: datetime, tz: timezone) -> str:
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def cloudevent_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}000Z"


def legacy_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_datetime(text: str, tz: timezone) -> datetime:
    """A date (company-local midnight) or an ISO date-time; no offset means company-local.

    Lenient like QBO's parser: ``Z``, ``+hh:mm``, ``-hhmm``; a ``+`` turned into a space by
    URL decoding is put back.
    """
    text = text.strip()
    if len(text) > 19 and text[19:20] == " ":
        text = text[:19] + "+" + text[20:]
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=tz)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)
