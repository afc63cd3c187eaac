"""The fold: every claim in the log, folded into rows that state what the news says.

`fold(records) -> State` is the one place the meaning of the log lives. The State holds
the claims by the person or org they are about (`state`); a person's rows are derived
from their claims by replaying their career (`careers`), an org's from its own claims
(`orgs`). Rows (`rows`) are immutable values; the questions (rosters, timelines, trees,
flows) are answered from rows alone by `service.answers`, so the SQL cache and this
fold share those rules. Who may have changed after an event is the projector's
business (`service.reach`), not the rules'.

Valid time uses partial dates (`service.dates`): a claim's `on` is a range of days; a
value-less date is (-inf, the source's published day]. Where one day is needed (an org
version boundary, a role segment, the order claims are applied in) the range's *point*
stands for it: its earliest day, else its latest, else -inf.

The rules, as decided:

1. The start range of a membership is the range of its join claim's `on`. Join claims
   of one fact_key (type, person, org, role) for the same person and org whose ranges
   overlap are ONE membership carrying all their sources; its start is the intersection
   of the ranges of its live (not denied or retracted) claims, or of all its claims when
   none is live. A claim overlapping no stint of its fact_key starts a new stint. Claims
   are grouped in position order, each joining the first stint whose combined range it
   overlaps, so a stint's claims always have a common day and the intersection is never
   empty (`dates.combine` would fall back on the hull). The role of member.joined is the
   stint's initial role; its title is the first title its claims give.
2. member.left ends the stint of (person, org) open at the left's date: the
   latest-starting stint whose start earliest <= the left's latest, else the latest
   stint; stints of another fact_key of that org whose start overlaps the chosen one's
   are the same stint reported with another role, and end with it. Several lefts ending
   one stint combine like joins (intersection, else hull). The left also ends the
   person's stints in every sub-org of the org as of the left's point (following OrgRow
   parents), if they started before that point and have no end at or before it. A left
   from an org the person never joined makes no membership row.
3. member.role_changed starts a new role segment of the stint chosen as in rule 2, from
   the change's point, with its role and title. With no stint in the org it does nothing.
4. lead.appointed gives the person the lead role from the appointment's point in every
   stint of theirs in the org that may be open then: one that has not ended by then and
   whose start may have come by then (its earliest day is on or before it, or it has
   none). So someone who joined at an unknown date known by the article's day and was
   appointed lead on a dated day before it has one stint, led from that day, not a
   member stint and a lead stint side by side. With no such stint, a stint starts there
   with role lead. An org has one lead at a time: the holder of the latest lead-making
   claim (an appointment, a join as lead, a change of role to lead), by its point, then
   its position. So each such claim ends the lead role (not the membership) of whoever
   else holds it in that org at its point, by an earlier claim: their segment turns
   back to role member. A lead segment counts from its claim's point even when its
   stint's start is dated later (a change of role reported with a date before the
   join's). So at most one person surely leads an org on a day. Everything is applied
   in valid-time order, so out-of-order recording gives the same answer.
5. org.merged X into Y on d: X ends at d; every stint in X open at d ends with the
   merge's range, and a stint in Y starts with it, with the role and title held at d in
   the latest-starting of them and the merge as its source, unless the person already
   has a stint in Y covering d. A lead role is carried over as member (without its
   title): X's lead does not lead Y. Sub-orgs of X get parent Y from d (and follow Y if
   Y merges on later).
6. org.dissolved X on d: X ends; every stint in X open at d ends with its range.
7. org.moved: the parent from d; org.renamed: the name from d; each gives a new OrgRow
   version. org.added creates the org, existing from its `on` (-inf without one); the
   first live org.added wins for kind, parent and `on`, later ones add nothing. An org
   ends at its earliest live merge or dissolution. An org only ever referred to exists
   for all time, with kind None.
8. Every claim's status starts as its envelope status; claim.confirmed / denied /
   retracted on event E sets E's status from that claim's position on (last one wins;
   claims on unknown ids, or on claim events, are ignored). A denied or retracted claim
   has no effect on rosters: such a left ends nothing, such a role change, appointment or
   org event does nothing. A membership's status is the highest-ranked status of its
   live join claims (of its appointment or merge when it was created by one); when all
   its join claims are dead the row stays, with the dead status set last.
9. comp.reported registers the ids it names and nothing else, for now.
10. Moves: a live member.left of A with to_org_id B, or a live member.joined of B with
    from_org_id A, is the move A->B. One MoveRow per (person, A, B) carries all those
    sources; its date combines the joins' ranges when any join reports it, else the
    lefts'. (Whether a move counts between two orgs' subtrees is `answers.flows`: on
    some day of its date range, not only its first.)
11. Names: the first name seen for an id wins, whoever gave it; aliases are kept in the
    order added, deduplicated. Names and aliases say what a person or org is called,
    not where anyone works, so a claim's status does not touch them.

Within one person, claims are applied in order of (point, position); a membership row
is one role segment of one stint: segments partition its time, the first open below
(seg_from None), the last open above (seg_until None).

Pure: standard library and msgspec-typed events only, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.fold.claims import DEAD, Claim, Recorded, StoredClaim
from service.fold.rows import (
    SOURCES,
    MembershipRow,
    MoveRow,
    OrgRow,
    PersonRow,
    Row,
    SourceRef,
    row_key,
    sources_json,
    version_on,
)
from service.fold.state import Applied, NotLoaded, OrgFile, PersonFile, State
from service.fold.state import Changes as FoldChanges


def fold(records: Iterable[Recorded]) -> State:
    """The whole State of a log: every record applied, in position order."""
    state = State()
    for rec in records:
        state.apply(rec)
    return state


__all__ = [
    "DEAD",
    "SOURCES",
    "Applied",
    "Claim",
    "FoldChanges",
    "MembershipRow",
    "MoveRow",
    "NotLoaded",
    "OrgFile",
    "OrgRow",
    "PersonFile",
    "PersonRow",
    "Recorded",
    "Row",
    "SourceRef",
    "State",
    "StoredClaim",
    "fold",
    "row_key",
    "sources_json",
    "version_on",
]
