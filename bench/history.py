"""A generated event history of realistic shape, deterministic by seed.

The world: companies with labs with teams (company > lab > team), people hired from
outside, moving between companies (a `member.left` with `to_org_id` and the matching
`member.joined` with `from_org_id`), moving inside one, leaving, appointed leads,
changing roles; orgs added, renamed, moved under another lab, merged into a sibling,
dissolved; pay reports, aliases; a few claims denied, retracted or confirmed later.
Each fact is reported by one to four outlets, each with its own idempotency key, its
own published day and its own precision for `on` (a year, a month, a day, or a month
narrowed by explicit bounds), so several events share one fact.

Valid time runs forward with the log, as news does: a history planned for `total`
events spans about 31 years from 1994, whatever prefix of it is taken.

Every event is valid for the service: an id is introduced (by `person_name`,
`org_name`, `person.added` or `org.added`) before any event uses it alone. Claims
(`claim.*`) need the `event_id` the server returned for an earlier event, so they are
emitted with a placeholder (`@ref:INDEX`, INDEX being the earlier event's index in the
stream, always at least `claim_lag` events back, CLAIM_LAG unless told) that `bind`
replaces with the id once it is known. `targets` holds the indices a claim may refer to:
a poster keeps the ids of those only.

`python -m bench.history -n 5000 [--seed 1] [--total N]` prints the events as JSON lines
(claims bound to made-up ids) and a summary on stderr.
"""

from __future__ import annotations

import argparse
import calendar
import random
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

import msgspec

Event = dict[str, Any]

CLAIM_LAG: Final = 2500
REF_PREFIX: Final = "@ref:"
START: Final = date(1994, 1, 1)
SPAN_DAYS: Final = 31 * 365
EVENTS_PER_FACT: Final = 1.9  # measured average, to pace valid time

_FIRST = [
    "Ada",
    "Alan",
    "Amara",
    "Anil",
    "Aya",
    "Bo",
    "Carla",
    "Chen",
    "Dara",
    "Elif",
    "Emil",
    "Farah",
    "Gita",
    "Hana",
    "Ines",
    "Ivan",
    "Jae",
    "Jun",
    "Kai",
    "Lena",
    "Li",
    "Maya",
    "Mei",
    "Nadia",
    "Noor",
    "Omar",
    "Pia",
    "Quinn",
    "Ravi",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Uma",
    "Vera",
    "Wei",
    "Yara",
    "Yuki",
    "Zane",
    "Zoe",
]
_LAST = [
    "Abe",
    "Bauer",
    "Costa",
    "Diaz",
    "Eze",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Khan",
    "Kim",
    "Lee",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Novak",
    "Okafor",
    "Park",
    "Patel",
    "Pang",
    "Quist",
    "Rossi",
    "Sato",
    "Silva",
    "Singh",
    "Tanaka",
    "Ueda",
    "Vogel",
    "Wang",
    "Xu",
    "Yilmaz",
    "Zhang",
]
_COMPANY = [
    "Nova",
    "Quill",
    "Arbor",
    "Helix",
    "Lumen",
    "Vector",
    "Cobalt",
    "Orbit",
    "Sable",
    "Tandem",
    "Atlas",
    "Kestrel",
    "Prism",
    "Summit",
    "Fathom",
    "Meridian",
    "Halcyon",
    "Juniper",
    "Obsidian",
    "Polar",
]
_COMPANY_SUFFIX = ("AI", "Labs", "Systems", "Research", "Intelligence", "Technologies")
_LAB = [
    "Foundation Models",
    "Superintelligence",
    "Applied Research",
    "Safety",
    "Infrastructure",
    "Robotics",
    "Vision",
    "Speech",
    "Reasoning",
    "Agents",
    "Data",
    "Alignment",
]
_TEAM = [
    "Pretraining",
    "Post-training",
    "Evaluation",
    "Inference",
    "Multimodal",
    "RL",
    "Tokenizers",
    "Scaling",
    "Interpretability",
    "Red Team",
    "Compilers",
    "Kernels",
    "Retrieval",
    "Code",
    "Math",
    "Memory",
    "Planning",
    "Audio",
    "Video",
    "Serving",
]
_TITLES = (
    "Research Scientist",
    "Staff Research Scientist",
    "Principal Engineer",
    "Distinguished Engineer",
    "Research Engineer",
    "Head of Research",
    "VP Engineering",
    "Chief Scientist",
)
_OUTLETS = (
    ("Le Monde Informatique", "www.lemondeinformatique.fr", "fr"),
    ("The Information", "www.theinformation.com", "en"),
    ("Bloomberg", "www.bloomberg.com", "en"),
    ("Heise", "www.heise.de", "de"),
    ("Nikkei Asia", "asia.nikkei.com", "en"),
    ("TechCrunch", "techcrunch.com", "en"),
    ("El País", "elpais.com", "es"),
    ("Example Wire", "example.org", "en"),
)
_VAGUE = ("cette semaine", "earlier this week", "recently", "in the past few days", "diese Woche")
_REASONS = ("source corrected the report", "the company denied it", "misidentified person", "duplicate story")

# Facts and their weights: one is drawn per step.
_FACTS: Final = {
    "hire": 22.0,
    "move": 20.0,
    "transfer": 6.0,
    "leave": 7.0,
    "lead": 5.0,
    "role": 6.0,
    "comp": 5.0,
    "alias": 2.0,
    "person": 1.0,
    "team": 0.25,
    "lab": 0.05,
    "company": 0.02,
    "rename": 0.6,
    "reorg": 0.6,
    "merge": 0.35,
    "dissolve": 0.3,
    "claim": 2.0,
}


@dataclass(slots=True)
class Org:
    id: str
    name: str
    kind: str
    parent: str | None
    company: str
    alive: bool = True
    members: set[str] = field(default_factory=set)
    lead: str | None = None
    teams: list[str] = field(default_factory=list)  # labs: their teams; companies: their labs


@dataclass(slots=True)
class Person:
    id: str
    name: str
    org: str | None = None


def bind(events: Sequence[Event], ids: Mapping[int, str]) -> list[Event]:
    """The events with every claim's `@ref:INDEX` replaced by the id of event INDEX."""
    out = []
    for event in events:
        target = event["data"].get("event_id") if event["type"].startswith("claim.") else None
        if isinstance(target, str) and target.startswith(REF_PREFIX):
            event = {**event, "data": {**event["data"], "event_id": ids[int(target[len(REF_PREFIX) :])]}}
        out.append(event)
    return out


class History:
    """An endless, deterministic stream of valid events (see the module docstring)."""

    def __init__(
        self, seed: int = 1, *, total: int = 1_000_000, prefix: str = "", claim_lag: int = CLAIM_LAG
    ) -> None:
        self.rng = random.Random(seed)
        # How far back a claim's target is at least: more than a batch, so a claim never
        # names an event of its own request, whose id is not known when it is bound.
        self.claim_lag = claim_lag
        self.seed = seed
        self.prefix = prefix
        self.index = 0  # events emitted so far; the next event's index
        self.day = 0.0
        self.days_per_fact = SPAN_DAYS / max(total / EVENTS_PER_FACT, 1.0)
        self.orgs: dict[str, Org] = {}
        self.people: dict[str, Person] = {}
        self.employed: list[str] = []  # may hold stale ids; checked on use
        self.idle: list[str] = []
        self.targets: set[int] = set()
        self._open_targets: list[int] = []
        self._counter = 0
        self._teams: list[str] = []
        self.facts: Counter[str] = Counter()
        self._pending: list[Event] = []
        for _ in range(8):
            self._pending += self._company(self.today)
        self._pending.reverse()  # popped from the end
        self.startups: list[str] = []

    # ---- the stream ----------------------------------------------------------------------

    @property
    def today(self) -> date:
        return START + timedelta(days=int(self.day))

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        while not self._pending:
            self.day += self.days_per_fact
            self._pending = self._fact()
            self._pending.reverse()
        event = self._pending.pop()
        # Keys and claim targets are given here, where the event's index is known.
        event["idempotency_key"] = f"{self.prefix}h{self.seed}-{self.index}"
        if event.pop("_claimable", False):
            self.targets.add(self.index)
            self._open_targets.append(self.index)
        self.index += 1
        return event

    def take(self, n: int) -> list[Event]:
        return [next(self) for _ in range(n)]

    def batches(self, size: int) -> Iterator[list[Event]]:
        while True:
            yield self.take(size)

    def teams_with_members(self, least: int = 3) -> list[str]:
        """Alive teams with at least `least` members now, by the generator's own account."""
        return sorted(
            o.id for o in self.orgs.values() if o.kind == "team" and o.alive and len(o.members) >= least
        )

    # ---- pieces --------------------------------------------------------------------------

    def _slug(self, text: str) -> str:
        self._counter += 1
        slug = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
        while "--" in slug:
            slug = slug.replace("--", "-")
        return f"{self.prefix}{slug[:80]}-{self._counter}"

    def _on(self, d: date) -> str | dict[str, str]:
        r = self.rng.random()
        if r < 0.4:
            return d.isoformat()
        if r < 0.8:
            return f"{d:%Y-%m}"
        if r < 0.9:
            return str(d.year)
        last = calendar.monthrange(d.year, d.month)[1]
        earliest = max(d.replace(day=1), d - timedelta(days=3))
        latest = min(d.replace(day=last), d + timedelta(days=3))
        return {
            "value": f"{d:%Y-%m}",
            "earliest": earliest.isoformat(),
            "latest": latest.isoformat(),
            "text": self.rng.choice(_VAGUE),
        }

    def _source(self, d: date, topic: str, outlet: tuple[str, str, str] | None = None) -> dict[str, str]:
        name, host, lang = outlet or self.rng.choice(_OUTLETS)
        published = d + timedelta(days=self.rng.randint(0, 20))
        self._counter += 1
        return {
            "url": f"https://{host}/{published:%Y/%m}/{topic}-{self._counter}",
            "outlet": name,
            "published_at": published.isoformat(),
            "lang": lang,
        }

    def _event(self, type_: str, data: dict[str, Any], d: date, topic: str = "") -> Event:
        return {"type": type_, "source": self._source(d, topic or type_.split(".")[0]), "data": data}

    def _reports(
        self, type_: str, data: dict[str, Any], d: date, *, most: int = 4, claimable: bool = False
    ) -> list[Event]:
        """One fact as told by 1..most outlets: same data, each its own date precision."""
        k = min(most, self.rng.choices((1, 2, 3, 4), (50, 30, 15, 5))[0])
        out: list[Event] = []
        for i, outlet in enumerate(self.rng.sample(_OUTLETS, k)):
            status = self.rng.choices(("rumor", "reported", "confirmed"), (10, 80, 10))[0]
            payload = dict(data)
            if "on" in payload:
                payload["on"] = self._on(d)
            if i > 0:
                # Later outlets give the ids alone: the first report introduced them.
                for name_field in ("person_name", "org_name", "from_org_name", "to_org_name"):
                    payload.pop(name_field, None)
            event: Event = {
                "type": type_,
                "status": status,
                "source": self._source(d, type_.replace(".", "-"), outlet),
                "data": payload,
            }
            if claimable and (status == "rumor" or self.rng.random() < 0.03):
                event["_claimable"] = True
            out.append(event)
        return out

    def _org_added(self, org: Org, d: date) -> Event:
        data: dict[str, Any] = {"org_id": org.id, "name": org.name, "kind": org.kind}
        if org.parent is not None:
            data["parent_id"] = org.parent
        data["on"] = self._on(d)
        return self._event("org.added", data, d, "org")

    def _company(self, d: date) -> list[Event]:
        name = f"{self.rng.choice(_COMPANY)} {self.rng.choice(_COMPANY_SUFFIX)}"
        company = Org(self._slug(name), name, "company", None, "")
        company.company = company.id
        self.orgs[company.id] = company
        out = [self._org_added(company, d)]
        for _ in range(self.rng.randint(2, 3)):
            out += self._lab(company, d)
        return out

    def _lab(self, company: Org, d: date) -> list[Event]:
        area = self.rng.choice(_LAB)
        lab = Org(
            self._slug(f"{company.name} {area}"), f"{company.name} {area}", "lab", company.id, company.id
        )
        company.teams.append(lab.id)
        self.orgs[lab.id] = lab
        out = [self._org_added(lab, d)]
        for _ in range(self.rng.randint(2, 4)):
            out.append(self._org_added(self._team(lab), d))
        return out

    def _team(self, lab: Org) -> Org:
        area = self.rng.choice(_TEAM)
        team = Org(self._slug(f"{lab.name} {area}"), f"{area} ({lab.name})", "team", lab.id, lab.company)
        lab.teams.append(team.id)
        self.orgs[team.id] = team
        self._teams.append(team.id)
        return team

    def _new_person(self) -> Person:
        name = f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"
        person = Person(self._slug(name), name)
        self.people[person.id] = person
        return person

    def _alive(self, kind: str) -> list[Org]:
        return [o for o in self.orgs.values() if o.alive and o.kind == kind]

    def _random_team(
        self, *, other_company: str | None = None, same_company: str | None = None
    ) -> Org | None:
        for _ in range(30):
            team = self.orgs[self.rng.choice(self._teams)]
            if not team.alive:
                continue
            if other_company is not None and team.company == other_company:
                continue
            if same_company is not None and team.company != same_company:
                continue
            return team
        return None

    def _employed_person(self) -> Person | None:
        for _ in range(20):
            if not self.employed:
                return None
            i = self.rng.randrange(len(self.employed))
            person = self.people[self.employed[i]]
            if person.org is not None and self.orgs[person.org].alive:
                return person
            # Stale: the person left, or the org ended. Drop it from the list.
            self.employed[i] = self.employed[-1]
            self.employed.pop()
        return None

    def _place(self, person: Person, org: Org | None) -> None:
        if person.org is not None:
            old = self.orgs[person.org]
            old.members.discard(person.id)
            if old.lead == person.id:
                old.lead = None
        person.org = None if org is None else org.id
        if org is None:
            self.idle.append(person.id)
        else:
            org.members.add(person.id)
            self.employed.append(person.id)

    # ---- facts ---------------------------------------------------------------------------

    def _fact(self) -> list[Event]:
        kind = self.rng.choices(tuple(_FACTS), tuple(_FACTS.values()))[0]
        events: list[Event] = getattr(self, f"_fact_{kind}")(self.today)
        if events:
            self.facts[kind] += 1
        return events

    def _fact_hire(self, d: date) -> list[Event]:
        person: Person | None = None
        if self.idle and self.rng.random() < 0.3:
            person = self.people[self.idle.pop(self.rng.randrange(len(self.idle)))]
            if person.org is not None:
                return []
        out: list[Event] = []
        data: dict[str, Any] = {}
        if person is None:
            person = self._new_person()
            if self.rng.random() < 0.15:
                out.append(self._event("person.added", {"person_id": person.id, "name": person.name}, d))
            else:
                data["person_name"] = person.name
        data["person_id"] = person.id
        target: Org | None
        if self.rng.random() < 0.03:
            # A startup the news names in passing: introduced by org_name, no org.added.
            if self.startups and self.rng.random() < 0.7:
                target = self.orgs[self.rng.choice(self.startups)]
            else:
                name = f"{self.rng.choice(_COMPANY)} {self.rng.choice(_COMPANY_SUFFIX)}"
                target = Org(self._slug(name), name, "company", None, "")
                target.company = target.id
                self.orgs[target.id] = target
                self.startups.append(target.id)
                data["org_name"] = target.name
        else:
            target = self._random_team()
            if target is None:
                return []
        data["org_id"] = target.id
        data["on"] = ""
        if self.rng.random() < 0.3:
            data["title"] = self.rng.choice(_TITLES)
        self._place(person, target)
        return out + self._reports("member.joined", data, d, claimable=True)

    def _fact_move(self, d: date, *, internal: bool = False) -> list[Event]:
        person = self._employed_person()
        if person is None or person.org is None:
            return []
        source = self.orgs[person.org]
        if internal:
            dest = self._random_team(same_company=source.company)
        else:
            dest = self._random_team(other_company=source.company)
        if dest is None or dest.id == source.id:
            return []
        out: list[Event] = []
        if self.rng.random() < 0.7:
            left = {"person_id": person.id, "org_id": source.id, "to_org_id": dest.id, "on": ""}
            out += self._reports("member.left", left, d, most=2, claimable=True)
        joined: dict[str, Any] = {
            "person_id": person.id,
            "org_id": dest.id,
            "from_org_id": source.id,
            "on": "",
        }
        if self.rng.random() < 0.2:
            joined["title"] = self.rng.choice(_TITLES)
        out += self._reports("member.joined", joined, d, claimable=True)
        self._place(person, dest)
        return out

    def _fact_transfer(self, d: date) -> list[Event]:
        return self._fact_move(d, internal=True)

    def _fact_leave(self, d: date) -> list[Event]:
        person = self._employed_person()
        if person is None or person.org is None:
            return []
        data: dict[str, Any] = {"person_id": person.id, "org_id": person.org, "on": ""}
        if self.rng.random() < 0.3:
            data["reason"] = self.rng.choice(("sabbatical", "founding a startup", "retired", "undisclosed"))
        self._place(person, None)
        return self._reports("member.left", data, d, claimable=True)

    def _fact_lead(self, d: date) -> list[Event]:
        team = self._random_team()
        if team is None:
            return []
        data: dict[str, Any] = {}
        if team.members and self.rng.random() < 0.8:
            person = self.people[self.rng.choice(sorted(team.members))]
        else:
            person = self._new_person()
            data["person_name"] = person.name
            self._place(person, team)
        data.update(person_id=person.id, org_id=team.id, on="")
        if self.rng.random() < 0.5:
            data["title"] = "Head of " + team.name.split(" (")[0]
        team.lead = person.id
        return self._reports("lead.appointed", data, d)

    def _fact_role(self, d: date) -> list[Event]:
        person = self._employed_person()
        if person is None or person.org is None:
            return []
        data: dict[str, Any] = {
            "person_id": person.id,
            "org_id": person.org,
            "role": self.rng.choice(("member", "advisor", "lead")),
            "on": "",
        }
        if self.rng.random() < 0.6:
            data["title"] = self.rng.choice(_TITLES)
        return self._reports("member.role_changed", data, d)

    def _fact_comp(self, d: date) -> list[Event]:
        person = self._employed_person()
        if person is None or person.org is None:
            return []
        low = self.rng.randrange(200, 5000) * 1000
        amount: dict[str, Any] = {"min": low, "currency": "USD"}
        if self.rng.random() < 0.6:
            amount["max"] = low + self.rng.randrange(0, 5000) * 1000
        data: dict[str, Any] = {
            "person_id": person.id,
            "org_id": self.orgs[person.org].company,
            "amount": amount,
            "basis": self.rng.choice(("total", "annual", "signing")),
            "on": "",
        }
        if data["basis"] == "total":
            data["term"] = f"{self.rng.randint(2, 5)} years"
        return self._reports("comp.reported", data, d, most=2)

    def _fact_alias(self, d: date) -> list[Event]:
        if not self.employed:
            return []
        person = self.people[self.rng.choice(self.employed)]
        first, _, last = person.name.partition(" ")
        alias = self.rng.choice((f"{last} {first}", f"{first[0]}. {last}", f"{first} {last[:1]}."))
        return self._reports("person.alias_added", {"person_id": person.id, "alias": alias}, d, most=2)

    def _fact_person(self, d: date) -> list[Event]:
        person = self._new_person()
        self.idle.append(person.id)
        data = {"person_id": person.id, "name": person.name, "aliases": [person.name.upper()]}
        return [self._event("person.added", data, d, "profile")]

    def _fact_team(self, d: date) -> list[Event]:
        labs = self._alive("lab")
        return [self._org_added(self._team(self.rng.choice(labs)), d)] if labs else []

    def _fact_lab(self, d: date) -> list[Event]:
        companies = [o for o in self._alive("company") if o.teams]
        return self._lab(self.rng.choice(companies), d) if companies else []

    def _fact_company(self, d: date) -> list[Event]:
        return self._company(d)

    def _fact_rename(self, d: date) -> list[Event]:
        org = self._random_team()
        if org is None:
            return []
        org.name = f"{org.name.split(' — ')[0]} — {d.year}"
        return self._reports("org.renamed", {"org_id": org.id, "name": org.name, "on": ""}, d, most=2)

    def _fact_reorg(self, d: date) -> list[Event]:
        team = self._random_team()
        if team is None or team.parent is None:
            return []
        labs = [
            self.orgs[i] for i in self.orgs[team.company].teams if self.orgs[i].alive and i != team.parent
        ]
        if not labs:
            return []
        lab = self.rng.choice(labs)
        self.orgs[team.parent].teams.remove(team.id)
        lab.teams.append(team.id)
        team.parent = lab.id
        return self._reports("org.moved", {"org_id": team.id, "parent_id": lab.id, "on": ""}, d, most=2)

    def _fact_merge(self, d: date) -> list[Event]:
        team = self._random_team()
        if team is None or team.parent is None:
            return []
        siblings = [self.orgs[i] for i in self.orgs[team.parent].teams if self.orgs[i].alive and i != team.id]
        if not siblings:
            return []
        into = self.rng.choice(siblings)
        team.alive = False
        for person_id in sorted(team.members):
            self.people[person_id].org = into.id
            into.members.add(person_id)
        team.members.clear()
        return self._reports("org.merged", {"org_id": team.id, "into_id": into.id, "on": ""}, d, most=2)

    def _fact_dissolve(self, d: date) -> list[Event]:
        team = self._random_team()
        if team is None or team.parent is None:
            return []
        if sum(self.orgs[i].alive for i in self.orgs[team.parent].teams) < 2:
            return []  # keep every lab with a team
        team.alive = False
        for person_id in sorted(team.members):
            self.people[person_id].org = None
            self.idle.append(person_id)
        team.members.clear()
        return self._reports("org.dissolved", {"org_id": team.id, "on": ""}, d, most=1)

    def _fact_claim(self, d: date) -> list[Event]:
        ready = [i for i in self._open_targets[:64] if i <= self.index - self.claim_lag]
        if not ready:
            return []
        target = self.rng.choice(ready)
        self._open_targets.remove(target)
        type_ = self.rng.choices(("claim.denied", "claim.retracted", "claim.confirmed"), (50, 25, 25))[0]
        data: dict[str, Any] = {"event_id": f"{REF_PREFIX}{target}"}
        if type_ != "claim.confirmed":
            data["reason"] = self.rng.choice(_REASONS)
        return [self._event(type_, data, d, "correction")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="how many events to print")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--total", type=int, default=1_000_000, help="the history's planned length (pacing)")
    args = parser.parse_args(argv)
    history = History(args.seed, total=args.total)
    ids: dict[int, str] = {}
    encoder = msgspec.json.Encoder()
    types: Counter[str] = Counter()
    out = sys.stdout.buffer
    for start in range(0, args.n, 1000):
        batch = history.take(min(1000, args.n - start))
        for i in range(len(batch)):
            if start + i in history.targets:
                ids[start + i] = str(uuid.UUID(int=random.Random(start + i).getrandbits(128), version=4))
        for event in bind(batch, ids):
            types[event["type"]] += 1
            out.write(encoder.encode(event) + b"\n")
    kinds = Counter(o.kind for o in history.orgs.values())
    print(
        f"{args.n} events, {len(history.people)} people, {len(history.orgs)} orgs {dict(kinds)}, "
        f"valid time {START} .. {history.today}",
        file=sys.stderr,
    )
    print(", ".join(f"{t} {n}" for t, n in types.most_common()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
