"""Partial dates: ranges of days, as precise as the news is and no more."""

from __future__ import annotations

from datetime import date

import pytest

from service import dates
from service.dates import DayRange, PartialDateError


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("2025", "2025-01-01", "2025-12-31"),
        ("2025-07", "2025-07-01", "2025-07-31"),
        ("2025-07-08", "2025-07-08", "2025-07-08"),
        ("2025-02", "2025-02-01", "2025-02-28"),
        ("2024-02", "2024-02-01", "2024-02-29"),
        ("2000-02", "2000-02-01", "2000-02-29"),
        ("1900-02", "1900-02-01", "1900-02-28"),
        ("2024-12", "2024-12-01", "2024-12-31"),
        ("2024-04", "2024-04-01", "2024-04-30"),
    ],
)
def test_a_value_covers_every_day_of_its_precision(value: str, first: str, last: str) -> None:
    assert dates.value_range(value) == (d(first), d(last))
    assert dates.resolve(value) == DayRange(d(first), d(last))


def test_a_year_is_never_padded_to_its_first_day() -> None:
    year = dates.resolve("2021")
    assert year.earliest != year.latest
    assert dates.width(year) == 365
    assert dates.width(dates.resolve("2024")) == 366


@pytest.mark.parametrize(
    "value",
    [
        "2025-02-29",
        "2023-02-29",
        "1900-02-29",
        "2025-04-31",
        "2025-13",
        "2025-00",
        "2025-07-00",
        "1899",
        "2101",
    ],
)
def test_impossible_dates_are_refused(value: str) -> None:
    with pytest.raises(PartialDateError):
        dates.value_range(value)


@pytest.mark.parametrize("text", ["2025", "2025-07", "25-07-08", "2025-7-8", "2025-02-30"])
def test_a_day_must_be_a_whole_real_day(text: str) -> None:
    with pytest.raises(PartialDateError):
        dates.parse_day(text)


def test_the_leap_day_exists_in_leap_years_only() -> None:
    assert dates.parse_day("2024-02-29") == d("2024-02-29")
    assert dates.parse_day("2000-02-29") == d("2000-02-29")
    with pytest.raises(PartialDateError):
        dates.parse_day("2100-02-29")


def test_explicit_bounds_narrow_the_value() -> None:
    week = dates.resolve("2025-07", "2025-07-07", "2025-07-08")
    assert week == DayRange(d("2025-07-07"), d("2025-07-08"))
    assert dates.resolve("2025", earliest="2025-06-01") == DayRange(d("2025-06-01"), d("2025-12-31"))
    assert dates.resolve("2025", latest="2025-03-31") == DayRange(d("2025-01-01"), d("2025-03-31"))


@pytest.mark.parametrize(
    ("value", "earliest", "latest"),
    [
        ("2025-07", "2025-06-30", None),
        ("2025-07", None, "2025-08-01"),
        ("2025", "2024-12-31", None),
    ],
)
def test_a_bound_outside_the_value_is_refused(value: str, earliest: str | None, latest: str | None) -> None:
    with pytest.raises(PartialDateError, match="outside"):
        dates.resolve(value, earliest, latest)


def test_crossing_bounds_are_refused() -> None:
    with pytest.raises(PartialDateError, match="after"):
        dates.resolve("2025-07", "2025-07-09", "2025-07-08")
    with pytest.raises(PartialDateError, match="after"):
        dates.resolve(None, "2025-07-09", "2025-07-08")


def test_no_value_is_open_below_and_ends_on_the_published_day() -> None:
    published = d("2025-07-08")
    assert dates.resolve(None, published=published) == DayRange(None, published)
    assert dates.resolve(None) == DayRange(None, None)
    assert dates.resolve(None, earliest="2025-01-01", published=published) == DayRange(
        d("2025-01-01"), published
    )
    # An explicit latest says more than the published day does.
    assert dates.resolve(None, latest="2011-12-31", published=published) == DayRange(None, d("2011-12-31"))


def test_a_value_ignores_the_published_day() -> None:
    assert dates.resolve("2025-07", published=d("2025-07-08")) == DayRange(d("2025-07-01"), d("2025-07-31"))


def test_an_announced_date_after_publication_keeps_its_own_bounds() -> None:
    published = d("2025-07-08")
    with pytest.raises(PartialDateError):
        dates.resolve(None, earliest="2025-09-01", published=published)
    assert dates.resolve_reported(None, earliest="2025-09-01", published=published) == DayRange(
        d("2025-09-01"), None
    )
    assert dates.resolve_reported(None, published=published) == DayRange(None, published)
    with pytest.raises(PartialDateError):
        dates.resolve_reported("2025-07", earliest="2025-06-01", published=published)


def test_the_point_of_a_range_is_its_earliest_day_else_its_latest() -> None:
    assert dates.point(DayRange(d("2025-07-01"), d("2025-07-31"))) == d("2025-07-01")
    assert dates.point(DayRange(None, d("2025-07-08"))) == d("2025-07-08")
    assert dates.point(DayRange(d("2025-07-01"), None)) == d("2025-07-01")
    assert dates.point(DayRange(None, None)) is None


def test_intersection_and_overlap() -> None:
    july = dates.resolve("2025-07")
    year = dates.resolve("2025")
    assert dates.intersect(july, year) == july
    assert dates.intersect(july, dates.resolve("2025-08")) is None
    assert dates.overlaps(DayRange(None, d("2025-07-08")), july)
    assert not dates.overlaps(DayRange(None, d("2025-06-30")), july)
    assert dates.intersect(DayRange(None, None), july) == july


def test_combine_intersects_or_falls_back_on_the_hull() -> None:
    july, week = dates.resolve("2025-07"), dates.resolve("2025-07", "2025-07-07", "2025-07-13")
    assert dates.combine([july, week]) == week
    assert dates.combine([july, dates.resolve("2025-09")]) == DayRange(d("2025-07-01"), d("2025-09-30"))
    assert dates.combine([july, DayRange(None, d("2025-08-01")), dates.resolve("2026")]) == DayRange(
        None, d("2026-12-31")
    )
    assert dates.hull(DayRange(d("2025-01-01"), None), july) == DayRange(d("2025-01-01"), None)
    with pytest.raises(ValueError, match="at least one"):
        dates.combine([])


def test_width_is_none_when_open() -> None:
    assert dates.width(dates.resolve("2025-07-08")) == 1
    assert dates.width(DayRange(None, d("2025-07-08"))) is None
