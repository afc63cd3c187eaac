# The peer library is the `bench` extra: where it is not installed (CI installs `dev`
# only), its classes are Any to mypy, which these codes would otherwise refuse.
# mypy: disable-error-code="import-not-found,misc,untyped-decorator"
"""The peer: the same appends through the `eventsourcing` library on PostgreSQL.

What a Python user would write instead of hiring-news: an Aggregate per person (and
per org, for org events) whose events are the claims, saved through an Application
with `PERSISTENCE_MODULE=eventsourcing.postgres` (psycopg 3, its own tables, its table
lock for gap-free notification ids). Claims (`claim.*`) are recorded on the aggregate
that holds the event they refer to.

Two ways, both timed on the same generated history as the service's batch run:
- `batch`: aggregates kept in memory, one `app.save(*touched)` (one transaction) per
  1000 input events: the library's best case, and the figure the goal compares with.
- `each`: the library's documented command shape, `repository.get`, the command, then
  `save`, for every event.

Run by bench.run as a separate process; prints one JSON line. The database is given by
POSTGRES_DBNAME / POSTGRES_HOST / POSTGRES_PORT / POSTGRES_USER / POSTGRES_PASSWORD.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench import history as hist

_NS = uuid.UUID("6f1c1e0a-8d0b-4d7e-9a57-3c1f0b9a2e11")


class Person(Aggregate):
    """A person with every claim made about them."""

    @staticmethod
    def create_id(person_id: str) -> uuid.UUID:
        return uuid.uuid5(_NS, "person:" + person_id)

    @event("Introduced")
    def __init__(self, person_id: str) -> None:
        self.person_id = person_id
        self.claims: list[str] = []

    @event("Claimed")
    def claim(
        self, type: str, status: str, source: dict[str, Any] | None, data: dict[str, Any], key: str | None
    ) -> None:
        self.claims.append(type)


class Org(Aggregate):
    """An org with every claim made about it as an org (added, renamed, moved, merged...)."""

    @staticmethod
    def create_id(org_id: str) -> uuid.UUID:
        return uuid.uuid5(_NS, "org:" + org_id)

    @event("Introduced")
    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.claims: list[str] = []

    @event("Claimed")
    def claim(
        self, type: str, status: str, source: dict[str, Any] | None, data: dict[str, Any], key: str | None
    ) -> None:
        self.claims.append(type)


class News(Application[uuid.UUID]):
    pass


def _owner(e: hist.Event) -> tuple[type[Person] | type[Org], str]:
    data = e["data"]
    if "person_id" in data:
        return Person, data["person_id"]
    return Org, data["org_id"]


def run_batch(app: News, events: list[hist.Event], seconds: float) -> dict[str, Any]:
    aggregates: dict[uuid.UUID, Person | Org] = {}
    holder: dict[int, uuid.UUID] = {}  # event index -> aggregate holding it
    done = stored = 0
    started = time.perf_counter()
    for start in range(0, len(events), 1000):
        touched: dict[uuid.UUID, Person | Org] = {}
        for index in range(start, min(start + 1000, len(events))):
            e = events[index]
            if e["type"].startswith("claim."):
                target = int(str(e["data"]["event_id"])[len(hist.REF_PREFIX) :])
                agg = aggregates[holder[target]]
            else:
                cls, ident = _owner(e)
                agg_id = cls.create_id(ident)
                found = aggregates.get(agg_id)
                if found is None:
                    found = aggregates[agg_id] = cls(ident)
                agg = found
            agg.claim(
                e["type"], e.get("status", "reported"), e.get("source"), e["data"], e.get("idempotency_key")
            )
            holder[index] = agg.id
            touched[agg.id] = agg
        recordings = app.save(*touched.values())
        stored += len(recordings)
        done = min(start + 1000, len(events))
        if time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    return {"mode": "batch", "events": done, "stored": stored, "seconds": elapsed}


def run_each(app: News, events: list[hist.Event], seconds: float) -> dict[str, Any]:
    holder: dict[int, uuid.UUID] = {}
    done = stored = 0
    started = time.perf_counter()
    for index, e in enumerate(events):
        agg: Person | Org
        if e["type"].startswith("claim."):
            target = int(str(e["data"]["event_id"])[len(hist.REF_PREFIX) :])
            agg = app.repository.get(holder[target])
        else:
            cls, ident = _owner(e)
            agg_id = cls.create_id(ident)
            agg = app.repository.get(agg_id) if agg_id in app.repository else cls(ident)
        agg.claim(
            e["type"], e.get("status", "reported"), e.get("source"), e["data"], e.get("idempotency_key")
        )
        holder[index] = agg.id
        stored += len(app.save(agg))
        done = index + 1
        if done % 100 == 0 and time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    return {"mode": "each", "events": done, "stored": stored, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_eventsourcing")
    parser.add_argument("--mode", choices=("batch", "each"), default="batch")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--events", type=int, default=100_000, help="history events generated before timing")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    events = hist.History(args.seed).take(args.events)
    env = {k: v for k, v in os.environ.items() if k.startswith("POSTGRES_")}
    env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
    env.setdefault("POSTGRES_PASSWORD", "")
    app = News(env=env)
    try:
        result = (
            run_batch(app, events, args.seconds)
            if args.mode == "batch"
            else run_each(app, events, args.seconds)
        )
    finally:
        app.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
