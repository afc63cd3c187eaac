"""The pictures draw what the answers say, escape what they quote, and carry no style attribute."""

from __future__ import annotations

from datetime import date

from service.answers import (
    Flows,
    Move,
    OrgHistory,
    OrgPerson,
    OrgVersion,
    PartialDate,
    RoleSpan,
    Stint,
    Timeline,
    TimelineEntry,
)
from service.ui import pictures


def when(value: str | None, earliest: str | None, latest: str | None) -> PartialDate:
    return PartialDate(
        value=value,
        earliest=date.fromisoformat(earliest) if earliest else None,
        latest=date.fromisoformat(latest) if latest else None,
    )


def test_describe_says_what_the_news_says() -> None:
    assert pictures.describe(when("2025-07", "2025-07-01", "2025-07-31")) == "2025-07"
    assert pictures.describe(when("2021", "2021-01-01", "2021-12-31")) == "2021"
    assert (
        pictures.describe(when("2025-07", "2025-07-07", "2025-07-08")) == "2025-07 (2025-07-07 to 2025-07-08)"
    )
    assert pictures.describe(when(None, None, "2025-07-08")) == "by 2025-07-08"
    assert pictures.describe(when("2025-06-12", "2025-06-12", "2025-06-12")) == "2025-06-12"
    assert pictures.describe(None) == "no end known"


def history(status: str = "reported") -> OrgHistory:
    stints = [
        Stint(
            org_id="lab",
            role="lead",
            title=None,
            start=when("2024", "2024-01-01", "2024-12-31"),
            end=when("2025-07", "2025-07-07", "2025-07-08"),
            status=status,
            roles=[RoleSpan(role="lead", title=None, since=None, until=None)],
        )
    ]
    return OrgHistory(
        org_id="lab",
        name="The <Lab> & co",
        as_of=7,
        versions=[
            OrgVersion(
                name="Lab",
                kind="lab",
                parent_id="a",
                since=date(2023, 1, 1),
                until=date(2024, 6, 1),
                ended=False,
            ),
            OrgVersion(
                name="Lab",
                kind="lab",
                parent_id="b",
                since=date(2024, 6, 1),
                until=date(2025, 9, 1),
                ended=True,
            ),
        ],
        people=[OrgPerson(person_id="p-1", name='Pat "P" <O>', stints=stints)],
    )


def test_an_org_picture_draws_sure_and_possible_spans_lead_and_reorgs() -> None:
    svg = pictures.org_picture(
        history(), date(2025, 7, 10), link="?on=2025-07-10", parent_names={"b": "B corp"}, org_names={}
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'role="group"' in svg and "<title id=" in svg and "<desc id=" in svg
    assert svg.count('class="possible"') == 2  # the year the start allows, the two days of the end
    assert svg.count('class="sure"') == 1 and 'class="lead"' in svg
    assert "moved under B corp" in svg and "ended (merged or dissolved)" in svg and "founded as Lab" in svg
    assert "The &lt;Lab&gt; &amp; co" in svg and "Pat &quot;P&quot; &lt;O&gt;" in svg
    assert "<Lab>" not in svg and " style=" not in svg
    assert 'href="/ui/people/p-1?on=2025-07-10"' in svg
    assert "2025-07-10" in svg  # the line at the chosen date


def test_denied_stints_are_struck_through() -> None:
    svg = pictures.org_picture(history("denied"), date(2025, 7, 10), link="", parent_names={}, org_names={})
    assert "status-denied" in svg and 'class="struck"' in svg


def test_a_career_and_flows() -> None:
    entry = TimelineEntry(
        org_id="g",
        role="member",
        title=None,
        start=when(None, None, "2011-12-31"),
        end=None,
        status="rumor",
        sources=(),
        roles=[RoleSpan(role="member", title=None, since=None, until=None)],
    )
    career = pictures.career_picture(
        Timeline(person_id="p", name="P", as_of=3, memberships=[entry]),
        date(2025, 1, 1),
        org_names={"g": "Google"},
        link="",
    )
    assert "status-rumor" in career and "Google" in career and 'class="open-end"' in career
    move = Move(
        person_id="p", from_org_id="a1", to_org_id="b1", on=when("2025-07", "2025-07-01", "2025-07-31")
    )
    flows = pictures.flows_picture(
        Flows(source="a", target="b", as_of=3, count=1, moves=[move]), {"a": "A", "b": "B", "a1": "A one"}
    )
    assert "1 moves from A to B" in flows and "A one" in flows and 'stroke-width="6"' in flows
