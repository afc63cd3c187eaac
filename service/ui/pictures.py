"""Pictures drawn on the server: answers in, SVG text out.

Nothing here computes an answer: each picture draws what a read returned, in the terms
the answer gives. A stint is drawn the way `answers.classify` reads it: from the start's
earliest day to its latest it is *possible* (hatched), from the start's latest day to
the end's earliest it is *sure* (solid), and from the end's earliest to its latest it is
possible again. An open start bound runs to the picture's left edge, an open end to its
right edge. Lead segments are a band on top of the bar; the days the lead role begins
are marked. Status is a class: rumor, reported, confirmed, denied, retracted (styled in
static/site.css, explained in the legend on the page).

Every picture is an `<svg role="group">` (it holds links, so not an "img") with a title and a description, and every shape
a reader may ask about has a `<title>` (a tooltip, and what a screen reader says). No
`style` attribute anywhere: the pages run under a Content-Security-Policy without
'unsafe-inline', so the look is classes and static/site.css.

Pure: standard library only (and the answers' own types).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from typing import Final

from service.answers import Flows, OrgHistory, PartialDate, RoleSpan, Stint, Timeline, TimelineEntry

WIDTH: Final = 960
LABEL: Final = 190  # the names' column
RIGHT: Final = 24
TOP: Final = 44  # the reorg marks and their labels
ROW: Final = 30
BAR: Final = 16
AXIS: Final = 34
PEOPLE_DRAWN: Final = 40


def _x(text: object) -> str:
    return escape(str(text), quote=True)


def describe(when: PartialDate | None) -> str:
    """A partial date in words: its value, and the days it allows when they narrow it."""
    if when is None:
        return "no end known"
    first, last = when.earliest, when.latest
    span = ""
    if first is not None and last is not None:
        span = str(first) if first == last else f"{first} to {last}"
    elif last is not None:
        span = f"by {last}"
    elif first is not None:
        span = f"from {first}"
    if when.value is None:
        return span or "unknown"
    if span in ("", when.value) or (
        first is not None and last is not None and _covers(when.value, first, last)
    ):
        return when.value
    return f"{when.value} ({span})"


def _covers(value: str, earliest: date, latest: date) -> bool:
    """Whether [earliest, latest] is exactly the days `value` (YYYY, YYYY-MM) covers."""
    if len(value) == 4:
        return earliest == date(int(value), 1, 1) and latest == date(int(value), 12, 31)
    if len(value) == 7:
        year, month = int(value[:4]), int(value[5:7])
        following = date(year + month // 12, month % 12 + 1, 1)
        return earliest == date(year, month, 1) and latest == following - timedelta(days=1)
    return False


@dataclass(frozen=True, slots=True)
class Scale:
    """Days to x, over [first, last], between `left` and `right`."""

    first: date
    last: date
    left: float
    right: float

    def x(self, day: date | None, *, open_low: bool = True) -> float:
        if day is None:
            return self.left if open_low else self.right
        day = min(max(day, self.first), self.last)
        span = max(1, (self.last - self.first).days)
        return round(self.left + (self.right - self.left) * (day - self.first).days / span, 1)


def scale(days: Iterable[date | None], on: date, left: float, right: float) -> Scale:
    """A scale over every day given and `on`, with a margin: a tenth of the span each side."""
    known = [d for d in days if d is not None] + [on]
    first, last = min(known), max(known)
    margin = timedelta(days=max(30, (last - first).days // 10))
    return Scale(first - margin, last + margin, left, right)


def _defs(prefix: str) -> str:
    return (
        "<defs>"
        f'<pattern id="{prefix}-hatch" class="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-ground"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern>'
        "</defs>"
    )


def _axis(s: Scale, y: float, height: float) -> str:
    """Year ticks (or month ticks, on a short span), gridlines down the rows."""
    parts = []
    years = s.last.year - s.first.year
    step = 1 if years <= 12 else 2 if years <= 24 else 5 if years <= 60 else 10
    ticks: list[tuple[date, str]] = []
    if years < 2:
        d = date(s.first.year, s.first.month, 1)
        while d <= s.last:
            if d >= s.first:
                ticks.append((d, d.strftime("%b %Y") if d.month in (1, 7) or not ticks else d.strftime("%b")))
            d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    else:
        ticks = [
            (date(year, 1, 1), str(year))
            for year in range(s.first.year + 1, s.last.year + 1)
            if year % step == 0 and date(year, 1, 1) <= s.last
        ]
    for day, text in ticks:
        x = s.x(day)
        parts.append(f'<line class="grid" x1="{x}" y1="{TOP - 6}" x2="{x}" y2="{y}"/>')
        parts.append(f'<text class="tick" x="{x}" y="{y + 16}">{_x(text)}</text>')
    parts.append(f'<line class="axis" x1="{s.left}" y1="{y}" x2="{s.right}" y2="{y}"/>')
    return "".join(parts)


def _on_line(s: Scale, on: date, bottom: float) -> str:
    x = s.x(on)
    return (
        f'<g class="on"><title>The chosen date: {on}</title>'
        f'<line x1="{x}" y1="{TOP - 14}" x2="{x}" y2="{bottom}"/>'
        f'<text x="{x}" y="{TOP - 18}">{on}</text></g>'
    )


def _bar(
    s: Scale,
    y: float,
    start: PartialDate,
    end: PartialDate | None,
    roles: Sequence[RoleSpan],
    status: str,
    prefix: str,
    title: str,
) -> str:
    """One stint: hatched where it is only possible, solid where it is sure, a lead band."""
    s1, s2 = start.earliest, start.latest
    e1 = end.earliest if end is not None else None
    e2 = end.latest if end is not None else None
    x_s1 = s.x(s1)
    x_s2 = s.x(s2, open_low=False)
    x_e1 = s.x(e1, open_low=end is not None)
    x_e2 = s.x(e2, open_low=False)
    if end is not None and e1 is None:
        x_e1 = x_s2  # an end with no earliest day may have come at any time: never sure
    top = y + (ROW - BAR) / 2
    parts = [f'<g class="stint status-{_x(status)}"><title>{_x(title)}</title>']
    hatch = f"url(#{prefix}-hatch)"
    if x_s2 > x_s1:
        parts.append(
            f'<rect class="possible" x="{x_s1}" y="{top}" width="{round(x_s2 - x_s1, 1)}" '
            f'height="{BAR}" fill="{hatch}"/>'
        )
    if x_e1 > x_s2:
        parts.append(
            f'<rect class="sure" x="{x_s2}" y="{top}" width="{round(x_e1 - x_s2, 1)}" height="{BAR}"/>'
        )
    low = max(x_e1, x_s1)
    if end is not None and x_e2 > low:
        parts.append(
            f'<rect class="possible" x="{low}" y="{top}" width="{round(x_e2 - low, 1)}" '
            f'height="{BAR}" fill="{hatch}"/>'
        )
    if end is None:
        # Still there as far as the log knows: an arrow past the right edge.
        parts.append(f'<path class="open-end" d="M{s.right - 1},{top} l8,{BAR / 2} l-8,{BAR / 2} z"/>')
    left_edge, right_edge = x_s1, (x_e2 if end is not None else s.right)
    for i, span in enumerate(roles):
        if span.role != "lead":
            continue
        lx = max(s.x(span.since), left_edge) if span.since is not None else left_edge
        rx = min(s.x(span.until), right_edge) if span.until is not None else right_edge
        if rx > lx:
            parts.append(
                f'<rect class="lead" x="{lx}" y="{top + BAR - 5}" width="{round(rx - lx, 1)}" height="5"/>'
            )
        if i > 0 or span.since is not None:
            parts.append(
                f'<g class="lead-mark"><title>Lead from {span.since or "the start"}</title>'
                f'<path d="M{lx},{top - 5} l4,5 l-4,5 l-4,-5 z"/></g>'
            )
    if status in ("denied", "retracted"):
        parts.append(
            f'<line class="struck" x1="{x_s1}" y1="{top + BAR / 2}" x2="{right_edge}" y2="{top + BAR / 2}"/>'
        )
    parts.append("</g>")
    return "".join(parts)


def _stint_title(who: str, where: str, stint: Stint | TimelineEntry) -> str:
    role = stint.role + (f", {stint.title}" if stint.title else "")
    return f"{who} in {where} ({role}, {stint.status}): from {describe(stint.start)}" + (
        f" until {describe(stint.end)}" if stint.end is not None else ", no end known"
    )


@dataclass(frozen=True, slots=True)
class Mark:
    """A change to the org itself: founded, renamed, moved, ended."""

    day: date
    kind: str
    text: str


def org_marks(history: OrgHistory, names: dict[str, str | None]) -> list[Mark]:
    """The reorgs its versions show: each version's start after the first says what changed."""
    marks = []
    previous = None
    for version in history.versions:
        if version.since is not None:
            if previous is None:
                marks.append(Mark(version.since, "founded", f"founded as {version.name or history.org_id}"))
            elif version.name != previous.name:
                marks.append(Mark(version.since, "renamed", f"renamed {version.name}"))
            elif version.parent_id != previous.parent_id:
                under = names.get(version.parent_id or "") or version.parent_id
                marks.append(
                    Mark(version.since, "moved", f"moved under {under}" if under else "moved to the top")
                )
            else:
                marks.append(Mark(version.since, "changed", "kind changed"))
        previous = version
    last = history.versions[-1] if history.versions else None
    if last is not None and last.ended and last.until is not None:
        marks.append(Mark(last.until, "ended", "ended (merged or dissolved)"))
    return marks


def org_picture(
    history: OrgHistory,
    on: date,
    *,
    link: str,
    parent_names: dict[str, str | None],
    org_names: dict[str, str | None],
    first: Sequence[str] = (),
    prefix: str = "org",
) -> str:
    """The Gantt of an org's memberships over time: a row per person (those in `first`,
    the roster shown, come first), a mark per reorg, a line at `on`.

    `link` is the query string the person links carry (the same date and position)."""
    order = {person_id: i for i, person_id in enumerate(first)}
    people = sorted(history.people, key=lambda p: order.get(p.person_id, len(order)))
    drawn, left_out = people[:PEOPLE_DRAWN], len(people) - PEOPLE_DRAWN
    marks = org_marks(history, parent_names)
    days: list[date | None] = [m.day for m in marks]
    for person in drawn:
        for stint in person.stints:
            days += [stint.start.earliest, stint.start.latest]
            if stint.end is not None:
                days += [stint.end.earliest, stint.end.latest]
    s = scale(days, on, LABEL, WIDTH - RIGHT)
    bottom = TOP + ROW * max(1, len(drawn))
    height = bottom + AXIS + (18 if left_out > 0 else 0)
    name = history.name or history.org_id
    label = f"Memberships of {name} over time, as of log position {history.as_of}"
    desc = (
        f"{len(people)} people; solid spans are sure, hatched spans possible (the dates are vague); "
        f"a band under a span is a lead role; the vertical line is {on}."
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="picture gantt" viewBox="0 0 {WIDTH} {height}" '
        f'role="group" aria-labelledby="{prefix}-title {prefix}-desc">'
        f'<title id="{prefix}-title">{_x(label)}</title><desc id="{prefix}-desc">{_x(desc)}</desc>',
        _defs(prefix),
        _axis(s, bottom, height),
    ]
    for i, person in enumerate(drawn):
        y = TOP + ROW * i
        who = person.name or person.person_id
        if i % 2:
            out.append(f'<rect class="band" x="0" y="{y}" width="{WIDTH}" height="{ROW}"/>')
        out.append(
            f'<a href="/ui/people/{_x(person.person_id)}{_x(link)}"><text class="who" x="{LABEL - 10}" '
            f'y="{y + ROW / 2 + 4}">{_x(_clip(who, 26))}</text></a>'
        )
        for stint in person.stints:
            where = org_names.get(stint.org_id) or stint.org_id
            out.append(
                _bar(
                    s,
                    y,
                    stint.start,
                    stint.end,
                    stint.roles,
                    stint.status,
                    prefix,
                    _stint_title(who, where, stint),
                )
            )
    if not drawn:
        out.append(f'<text class="empty" x="{(LABEL + WIDTH) / 2}" y="{TOP + ROW / 2 + 4}">nobody yet</text>')
    for mark in marks:
        x = s.x(mark.day)
        out.append(
            f'<g class="mark mark-{mark.kind}"><title>{_x(mark.text)} on {mark.day}</title>'
            f'<line x1="{x}" y1="{TOP - 8}" x2="{x}" y2="{bottom}"/>'
            f'<path d="M{x},{TOP - 8} l5,-8 h-10 z"/></g>'
        )
    out.append(_on_line(s, on, bottom))
    if left_out > 0:
        out.append(f'<text class="note" x="{LABEL}" y="{height - 4}">and {left_out} more, not drawn</text>')
    out.append("</svg>")
    return "".join(out)


def career_picture(
    timeline: Timeline, on: date, *, org_names: dict[str, str | None], link: str, prefix: str = "career"
) -> str:
    """A career: a row per stint, in start order, each in its status's style."""
    entries = timeline.memberships
    days: list[date | None] = []
    for entry in entries:
        days += [entry.start.earliest, entry.start.latest]
        if entry.end is not None:
            days += [entry.end.earliest, entry.end.latest]
    s = scale(days, on, LABEL, WIDTH - RIGHT)
    bottom = TOP + ROW * max(1, len(entries))
    height = bottom + AXIS
    who = timeline.name or timeline.person_id
    label = f"The career of {who}, as of log position {timeline.as_of}"
    desc = (
        f"{len(entries)} stints in start order; solid spans are sure, hatched spans possible; a band "
        f"under a span is a lead role; denied and retracted stints are struck through; the line is {on}."
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="picture career" viewBox="0 0 {WIDTH} {height}" '
        f'role="group" aria-labelledby="{prefix}-title {prefix}-desc">'
        f'<title id="{prefix}-title">{_x(label)}</title><desc id="{prefix}-desc">{_x(desc)}</desc>',
        _defs(prefix),
        _axis(s, bottom, height),
    ]
    for i, entry in enumerate(entries):
        y = TOP + ROW * i
        where = org_names.get(entry.org_id) or entry.org_id
        if i % 2:
            out.append(f'<rect class="band" x="0" y="{y}" width="{WIDTH}" height="{ROW}"/>')
        out.append(
            f'<a href="/ui/orgs/{_x(entry.org_id)}{_x(link)}"><text class="who" x="{LABEL - 10}" '
            f'y="{y + ROW / 2 + 4}">{_x(_clip(where, 26))}</text></a>'
        )
        out.append(
            _bar(
                s,
                y,
                entry.start,
                entry.end,
                entry.roles,
                entry.status,
                prefix,
                _stint_title(who, where, entry),
            )
        )
    if not entries:
        out.append(f'<text class="empty" x="{(LABEL + WIDTH) / 2}" y="{TOP + ROW / 2 + 4}">no stints</text>')
    out.append(_on_line(s, on, bottom))
    out.append("</svg>")
    return "".join(out)


def flows_picture(flows: Flows, names: dict[str, str | None], *, prefix: str = "flows") -> str:
    """Moves between two orgs: the sub-orgs people left on the left, those they joined on
    the right, a line for each pair as thick as its number of moves."""
    sources = sorted({m.from_org_id for m in flows.moves})
    targets = sorted({m.to_org_id for m in flows.moves})
    pairs: dict[tuple[str, str], list[str]] = {}
    for move in flows.moves:
        pairs.setdefault((move.from_org_id, move.to_org_id), []).append(move.person_id)
    rows = max(1, len(sources), len(targets))
    height = 60 + rows * 40
    left, right = 40, WIDTH - 40
    box = 260

    def y_of(i: int, n: int) -> float:
        return 50 + (rows * 40) * (i + 0.5) / max(1, n)

    frm = names.get(flows.source) or flows.source
    to = names.get(flows.target) or flows.target
    label = f"{flows.count} moves from {frm} to {to}, as of log position {flows.as_of}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="picture flows" viewBox="0 0 {WIDTH} {height}" '
        f'role="group" aria-labelledby="{prefix}-title"><title id="{prefix}-title">{_x(label)}</title>',
        f'<text class="side" x="{left}" y="24">from {_x(frm)}</text>',
        f'<text class="side end" x="{right}" y="24">to {_x(to)}</text>',
    ]
    for (a, b), people in sorted(pairs.items()):
        y1, y2 = y_of(sources.index(a), len(sources)), y_of(targets.index(b), len(targets))
        x1, x2 = left + box, right - box
        width = min(18, 3 + 3 * len(people))
        out.append(
            f'<g class="flow"><title>{len(people)} moved from {_x(names.get(a) or a)} to '
            f"{_x(names.get(b) or b)}: {_x(', '.join(people))}</title>"
            f'<path class="flow-line" stroke-width="{width}" d="M{x1},{y1} C{(x1 + x2) / 2},{y1} {(x1 + x2) / 2},{y2} {x2},{y2}"/></g>'
        )
    for i, org in enumerate(sources):
        y = y_of(i, len(sources))
        out.append(
            f'<a href="/ui/orgs/{_x(org)}"><rect class="node" x="{left}" y="{y - 14}" width="{box}" height="28" rx="4"/>'
            f'<text class="node-name" x="{left + 10}" y="{y + 5}">{_x(_clip(names.get(org) or org, 34))}</text></a>'
        )
    for i, org in enumerate(targets):
        y = y_of(i, len(targets))
        out.append(
            f'<a href="/ui/orgs/{_x(org)}"><rect class="node" x="{right - box}" y="{y - 14}" width="{box}" height="28" rx="4"/>'
            f'<text class="node-name" x="{right - box + 10}" y="{y + 5}">{_x(_clip(names.get(org) or org, 34))}</text></a>'
        )
    if not flows.moves:
        out.append(f'<text class="empty" x="{WIDTH / 2}" y="{height / 2}">no moves</text>')
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
