"""Partial dates as people write them (the CLI's tables)."""

from __future__ import annotations

from datetime import date

import pytest

from service import wording
from service.answers import PartialDate


def when(value: str | None, earliest: str | None, latest: str | None) -> PartialDate:
    return PartialDate(
        value=value,
        earliest=None if earliest is None else date.fromisoformat(earliest),
        latest=None if latest is None else date.fromisoformat(latest),
    )


@pytest.mark.parametrize(
    ("value", "earliest", "latest", "written"),
    [
        ("2025-07-08", "2025-07-08", "2025-07-08", "8 July 2025"),
        ("2025-07", "2025-07-01", "2025-07-31", "July 2025"),
        ("2025", "2025-01-01", "2025-12-31", "2025"),
        ("2025-07", "2025-07-07", "2025-07-08", "7–8 July 2025"),
        (None, "2025-06-30", "2025-07-08", "30 June – 8 July 2025"),
        (None, "2024-12-30", "2025-01-02", "30 December 2024 – 2 January 2025"),
        (None, "2025-06-01", "2025-07-31", "June–July 2025"),
        (None, "2025-02-01", "2025-02-28", "February 2025"),
        (None, "2024-02-01", "2024-02-29", "February 2024"),
        (None, None, "2025-07-08", "by 8 July 2025"),
        (None, None, "2011-12-31", "by 31 December 2011"),
        (None, "2025-09-01", None, "from 1 September 2025"),
        (None, None, None, "undated"),
    ],
)
def test_a_partial_date_is_written_as_people_write_it(
    value: str | None, earliest: str | None, latest: str | None, written: str
) -> None:
    assert wording.partial(when(value, earliest, latest)) == written


def test_no_end_is_nothing_and_a_day_is_a_day() -> None:
    assert wording.partial(None) == ""
    assert wording.day(date(2025, 6, 12)) == "12 June 2025"
