"""Partial dates: what the news says about *when*, as precisely as it says it.

A partial date is a closed range of days [earliest, latest]. "2025-07" is every day of
July 2025; it is never padded to the first of the month. Either end may be open (None):
a claim with no date value at all is (-inf, latest], latest being the day the source
was published, because a fact cannot be reported before it happened.

Pure: no I/O, standard library only.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

# Dates outside this window are almost certainly typos or garbage (a year 0025, 9999),
# and refusing them keeps every date comparable and printable.
MIN_YEAR = 1900
MAX_YEAR = 2100

_VALUE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)


class PartialDateError(ValueError):
    """A date string or range that cannot be a real day or range of days."""


@dataclass(frozen=True, slots=True, order=True)
class DayRange:
    """A closed range of days; None is an open end (-inf or +inf)."""

    earliest: date | None
    latest: date | None


def parse_day(text: str) -> date:
    """Parse a full YYYY-MM-DD date that must exist and lie in the accepted window."""
    match = _VALUE.match(text)
    if match is None or match.group(3) is None:
        raise PartialDateError(f"{text!r} is not a date in YYYY-MM-DD form")
    return _value_range(text, match)[0]


def asked_day(text: str) -> date:
    """A day a reader asks about (`on=`, `since=`): YYYY-MM-DD, any real day of the calendar.

    Unlike the days of claims, no window of years: asking about 1850 is no typo worth
    refusing, it simply finds nothing. The reasons are those of the claims' dates.
    """
    match = _DAY.fullmatch(text)
    if match is None:
        raise PartialDateError(f"{text!r} is not a day: give YYYY-MM-DD")
    if int(match.group(1)) < 1:
        raise PartialDateError(f"{text!r} has no year 0")
    return _value_range(text, match, window=False)[0]


def value_range(value: str) -> tuple[date, date]:
    """The first and last day that a value of precision year, month or day covers."""
    match = _VALUE.match(value)
    if match is None:
        raise PartialDateError(f"{value!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    return _value_range(value, match)


def _value_range(value: str, match: re.Match[str], *, window: bool = True) -> tuple[date, date]:
    year = int(match.group(1))
    if window and not MIN_YEAR <= year <= MAX_YEAR:
        raise PartialDateError(f"year {year} is outside {MIN_YEAR}..{MAX_YEAR}")
    month_text, day_text = match.group(2), match.group(3)
    if month_text is None:
        return date(year, 1, 1), date(year, 12, 31)
    month = int(month_text)
    if not 1 <= month <= 12:
        raise PartialDateError(f"{value!r} has no month {month}")
    last_day = calendar.monthrange(year, month)[1]
    if day_text is None:
        return date(year, month, 1), date(year, month, last_day)
    day = int(day_text)
    if not 1 <= day <= last_day:
        raise PartialDateError(f"{value!r} is not a real day ({year}-{month:02d} has {last_day} days)")
    exact = date(year, month, day)
    return exact, exact


def resolve(
    value: str | None,
    earliest: str | None = None,
    latest: str | None = None,
    published: date | None = None,
) -> DayRange:
    """The range of days a partial date stands for, with explicit bounds narrowing it.

    Raises PartialDateError when a bound lies outside the value's range or the bounds
    cross, since either means the claim contradicts itself.
    """
    span = value_range(value) if value is not None else None
    low, high = span if span is not None else (None, published)
    scope = value or "the open range"
    if earliest is not None:
        low = parse_day(earliest)
        if span is not None and not span[0] <= low <= span[1]:
            raise PartialDateError(f"earliest {earliest} lies outside {scope}")
    if latest is not None:
        high = parse_day(latest)
        if span is not None and not span[0] <= high <= span[1]:
            raise PartialDateError(f"latest {latest} lies outside {scope}")
    if low is not None and high is not None and low > high:
        raise PartialDateError(f"earliest {low} is after latest {high}")
    return DayRange(low, high)


def intersect(a: DayRange, b: DayRange) -> DayRange | None:
    """Both claims hold: the days both allow, or None when they contradict each other."""
    low = _max_low(a.earliest, b.earliest)
    high = _min_high(a.latest, b.latest)
    if low is not None and high is not None and low > high:
        return None
    return DayRange(low, high)


def overlaps(a: DayRange, b: DayRange) -> bool:
    return intersect(a, b) is not None


def _max_low(x: date | None, y: date | None) -> date | None:
    if x is None:
        return y
    if y is None:
        return x
    return max(x, y)


def _min_high(x: date | None, y: date | None) -> date | None:
    if x is None:
        return y
    if y is None:
        return x
    return min(x, y)


def resolve_reported(
    value: str | None,
    earliest: str | None = None,
    latest: str | None = None,
    published: date | None = None,
) -> DayRange:
    """Like `resolve`, but an explicit bound beats the published-day default.

    A source may announce a date after its own publication ("joins in September"), so
    when the published day is only the default latest end of a value-less date and an
    explicit earliest crosses it, the claim's own bounds are what it says.
    """
    try:
        return resolve(value, earliest, latest, published)
    except PartialDateError:
        if published is None:
            raise
        return resolve(value, earliest, latest)


def point(r: DayRange) -> date | None:
    """The one day that stands for a range where a single day is needed: its earliest.

    A range open below falls back on its latest day; None means -inf.
    """
    return r.earliest if r.earliest is not None else r.latest


def hull(a: DayRange, b: DayRange) -> DayRange:
    """The smallest range that holds both: what two contradicting claims allow together."""
    low = None if a.earliest is None or b.earliest is None else min(a.earliest, b.earliest)
    high = None if a.latest is None or b.latest is None else max(a.latest, b.latest)
    return DayRange(low, high)


def combine(ranges: Iterable[DayRange]) -> DayRange:
    """What several claims about one date allow: their intersection, or, when they
    contradict each other, the hull of them all, since no single one can be preferred.
    """
    items = list(ranges)
    if not items:
        raise ValueError("combine needs at least one range")
    both: DayRange | None = items[0]
    for item in items[1:]:
        both = None if both is None else intersect(both, item)
    if both is not None:
        return both
    result = items[0]
    for item in items[1:]:
        result = hull(result, item)
    return result


def width(r: DayRange) -> int | None:
    """How many days a range spans, or None when it is open: ranks claims by precision."""
    if r.earliest is None or r.latest is None:
        return None
    return (r.latest - r.earliest).days + 1
