"""A date range read from the rollups as whole months plus edge days
(services/query/summaries.split) covers exactly the days of the range, each once."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.query.summaries import split

# Far enough from the ends of the calendar that the window below fits.
LOW, HIGH = date(2, 1, 1), date(9998, 12, 31)
EDGES = [
    date(1, 1, 1),
    date(1, 1, 15),
    date(1, 1, 31),
    date(1, 2, 1),
    date(9999, 12, 1),
    date(9999, 12, 15),
    date(9999, 12, 31),
    date(9999, 11, 30),
]


def _days(lo: date, hi: date):
    day = lo
    while True:
        yield day
        if day == hi:
            return
        day += timedelta(days=1)


def covered(first, last, lo: date, hi: date) -> list[date]:
    """The days of lo..hi that split(first, last) covers, with repeats."""
    span = split(first, last)
    ranges = list(span.days)
    if span.months is not None:
        m_first, m_last = span.months
        assert m_first is None or m_first.day == 1
        assert m_last is None or m_last.day == 1
        ranges.append((m_first, None if m_last is None else _month_end(m_last)))
    return [day for day in _days(lo, hi) for a, b in ranges if (a is None or a <= day) and (b is None or day <= b)]


def _month_end(first_of_month: date) -> date:
    nxt = (
        date(first_of_month.year + first_of_month.month // 12, first_of_month.month % 12 + 1, 1)
        if first_of_month < date(9999, 12, 1)
        else None
    )
    return nxt - timedelta(days=1) if nxt else date(9999, 12, 31)


def expected(first, last, lo: date, hi: date) -> list[date]:
    first = None if first in (None, date.min) else first
    last = None if last in (None, date.max) else last
    return [day for day in _days(lo, hi) if (first is None or first <= day) and (last is None or day <= last)]


@given(st.dates(min_value=LOW, max_value=HIGH), st.integers(0, 120), st.integers(-1, 3))
def test_split_covers_each_day_of_the_range_once(start, length, bounded):
    end = start + timedelta(days=length)
    first, last = {0: (None, end), 1: (start, None), 2: (date.min, end), 3: (start, date.max)}.get(
        bounded, (start, end)
    )
    lo, hi = start - timedelta(days=70), end + timedelta(days=70)
    assert covered(first, last, lo, hi) == expected(first, last, lo, hi)


def test_split_at_the_ends_of_the_calendar():
    for first in [None, *EDGES]:
        for last in [None, *EDGES]:
            if first and last and first > last:
                continue
            lo, hi = date(1, 1, 1), date(1, 4, 30)
            assert covered(first, last, lo, hi) == expected(first, last, lo, hi), (first, last)
            lo, hi = date(9999, 9, 1), date(9999, 12, 31)
            assert covered(first, last, lo, hi) == expected(first, last, lo, hi), (first, last)


def test_whole_months_and_edges():
    assert split(date(2025, 1, 1), date(2025, 12, 31)).months == (date(2025, 1, 1), date(2025, 12, 1))
    assert split(date(2025, 1, 1), date(2025, 12, 31)).days == ()
    span = split(date(2025, 1, 15), date(2025, 3, 10))
    assert span.months == (date(2025, 2, 1), date(2025, 2, 1))
    assert span.days == ((date(2025, 1, 15), date(2025, 1, 31)), (date(2025, 3, 1), date(2025, 3, 10)))
    assert split(date(2025, 1, 15), date(2025, 2, 10)).months is None
    assert split(None, None).months == (None, None)
