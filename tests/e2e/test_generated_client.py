"""A third-party client works from openapi.yaml alone: openapi-python-client generates one
here (offline, from the checked-in file), and it is used against a real server."""

from __future__ import annotations

import datetime
import importlib
import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import BOOTSTRAP_KEY, ROOT
from tests.e2e.server import environment, serving

PACKAGE = "hiring_news_generated"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    where = tmp_path_factory.mktemp("generated")
    config = where / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: the code as generated
    made = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(ROOT / "openapi.yaml"),
            "--output-path",
            str(where / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout + made.stderr, made.stdout + made.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_public_reads_need_no_key_and_include_is_one_enum(generated: ModuleType) -> None:
    def parameter(function: Any, name: str) -> Any:
        return inspect.signature(function).parameters[name].annotation

    roster = module("api.orgs.orgs_org_id_roster_get_roster").sync_detailed
    assert typing.get_args(parameter(roster, "client")) == (generated.AuthenticatedClient, generated.Client)
    include = module("models").OrgsOrgIdRosterGetRosterInclude
    assert typing.get_args(parameter(roster, "include")) == (include, module("types").Unset)
    assert [m.value for m in include] == ["suborgs"]
    for name in ("api.people.people_person_id_timeline_get_timeline", "api.events.events_list_events"):
        assert generated.Client in typing.get_args(parameter(module(name).sync_detailed, "client")), name
    # Writes still need one.
    post = module("api.events.events_post_events").sync_detailed
    assert parameter(post, "client") is generated.AuthenticatedClient


def test_the_generated_client_against_the_server(generated: ModuleType, fresh_database: str) -> None:
    models = module("models")
    post = module("api.events.events_post_events")
    get_roster = module("api.orgs.orgs_org_id_roster_get_roster")
    get_timeline = module("api.people.people_person_id_timeline_get_timeline")
    list_events = module("api.events.events_list_events")
    event = models.MemberJoined.from_dict(
        {
            "type": "member.joined",
            "idempotency_key": "generated-1",
            "source": {"url": "https://example.org/generated", "published_at": "2025-07-08"},
            "data": {
                "person_id": "ruoming-pang",
                "person_name": "Ruoming Pang",
                "org_id": "meta-superintelligence-labs",
                "org_name": "Meta Superintelligence Labs",
                "on": {"value": "2025-07", "latest": "2025-07-08", "text": "cette semaine"},
            },
        }
    )
    with serving(environment(fresh_database)) as (base, _):
        writer = generated.AuthenticatedClient(base_url=base, token=BOOTSTRAP_KEY)
        created = post.sync_detailed(client=writer, body=event)
        assert created.status_code == 201, created.content
        [accepted] = created.parsed.events
        assert accepted.position == 1 and accepted.idempotency_key == "generated-1"
        assert accepted.recorded_at.tzinfo is not None
        again = post.sync_detailed(client=writer, body=event)
        assert again.status_code == 200 and again.parsed.events[0].replayed is True

        reader = generated.Client(base_url=base)  # no key: reads are public
        roster = get_roster.sync(
            client=reader,
            org_id="meta-superintelligence-labs",
            on=datetime.date(2025, 7, 10),
            include=models.OrgsOrgIdRosterGetRosterInclude.SUBORGS,
        )
        assert isinstance(roster, models.Roster)
        assert [m.person_id for m in roster.members] == ["ruoming-pang"]
        assert roster.members[0].start.latest == datetime.date(2025, 7, 8)

        timeline = get_timeline.sync(client=reader, person_id="ruoming-pang")
        assert isinstance(timeline, models.Timeline)
        assert [m.org_id for m in timeline.memberships] == ["meta-superintelligence-labs"]

        page = list_events.sync(client=reader, after=0, limit=10)
        assert isinstance(page, models.EventPage)
        [stored] = page.events
        assert stored.position == 1 and stored.idempotency_key == "generated-1" and page.next_ is None
        assert stored.data["person_id"] == "ruoming-pang"  # typed per event type in the contract (if/then)

        missing = get_roster.sync_detailed(client=reader, org_id="nobody")
        assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
