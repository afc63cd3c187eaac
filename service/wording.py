"""Dates as people write them, for the CLI's tables: "8 July 2025", "July 2025", "by 8 July 2025".

A partial date in an answer is a range of days [earliest, latest], either end open. It
is written as what it is: one day, a whole month or year, a range within them, or an open
end ("by", "from"). The value the source gave (`2025-07`) is not needed: its range says
the same, and says it narrowed when bounds narrowed it.

Pure: standard library only.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Final, Protocol

# English month names, whatever the locale (calendar.month_name follows it).
MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
UNDATED: Final = "undated"
DASH: Final = "–"  # an en dash, as ranges are written


class Ranged(Protocol):
    @property
    def earliest(self) -> date | None: ...

    @property
    def latest(self) -> date | None: ...


def day(d: date) -> str:
    """`2025-07-08` -> "8 July 2025"."""
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def month(d: date) -> str:
    return f"{MONTHS[d.month - 1]} {d.year}"


def _whole_month(low: date, high: date) -> bool:
    return low.day == 1 and (low.year, low.month) == (high.year, high.month) and high.day == _last(high)


def _last(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _whole_year(low: date, high: date) -> bool:
    return (low.month, low.day, high.month, high.day) == (1, 1, 12, 31) and low.year == high.year


def span(low: date, high: date) -> str:
    """A closed range of days, as short as it can be said."""
    if low == high:
        return day(low)
    if _whole_year(low, high):
        return str(low.year)
    if _whole_month(low, high):
        return month(low)
    if low.day == 1 and high.day == _last(high) and low.year == high.year:
        return f"{MONTHS[low.month - 1]}{DASH}{month(high)}"  # "June–July 2025"
    if (low.year, low.month) == (high.year, high.month):
        return f"{low.day}{DASH}{day(high)}"  # "7–8 July 2025"
    if low.year == high.year:
        return f"{low.day} {MONTHS[low.month - 1]} {DASH} {day(high)}"  # "30 June – 8 July 2025"
    return f"{day(low)} {DASH} {day(high)}"


def partial(when: Ranged | None) -> str:
    """A partial date of an answer as people write it; None (no end at all) is empty."""
    if when is None:
        return ""
    low, high = when.earliest, when.latest
    if low is not None and high is not None:
        return span(low, high)
    if high is not None:
        return f"by {day(high)}"
    if low is not None:
        return f"from {day(low)}"
    return UNDATED
