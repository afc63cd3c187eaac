"""Schemathesis against a real `hiring-news serve` on real PostgreSQL, from openapi.yaml alone.

Every operation of the contract gets generated requests, valid ones and invalid ones
(Schemathesis' positive and negative modes, its examples, coverage and fuzzing phases),
and every answer is checked: never a 5xx; a status the contract lists for the operation;
its media type; a body that validates against the schema; its required headers; invalid
input refused with a 4xx; a write refused without a key.

The server holds the founding article's events, so reads find real ids as well as
made-up ones. Cases are derandomized, so CI runs the same ones each time; set
HIRING_NEWS_FUZZ_EXAMPLES to run more, and HIRING_NEWS_FUZZ_RANDOM=1 to explore.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.core.result import Ok

from tests.conftest import ADMIN, ROOT, with_database
from tests.e2e.server import cli, environment, serving

EXAMPLES = int(os.environ.get("HIRING_NEWS_FUZZ_EXAMPLES", "40"))
RANDOM = os.environ.get("HIRING_NEWS_FUZZ_RANDOM") == "1"

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.ignored_auth,
]


async def _create(dsn: str, name: str) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()


async def _drop(dsn: str, name: str) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def served(pg_dsn: str) -> Iterator[str]:
    """One server for every operation's cases: starting one per operation would cost more than the cases."""
    name = f"hn_fuzz_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create(pg_dsn, name))
    try:
        env = environment(with_database(pg_dsn, name))
        imported = cli(["import", "--example", "article"], env)
        assert imported.returncode == 0, imported.stderr
        with serving(env) as (base, _):
            yield base
    finally:
        asyncio.run(_drop(pg_dsn, name))


@pytest.fixture(scope="module")
def tally() -> Iterator[Counter[str]]:
    """Requests sent per operation and mode: proof that the cases ran, and the figure for the README."""
    counts: Counter[str] = Counter()
    yield counts
    print(
        f"\nschemathesis: {counts.total()} requests; "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    documented = {op.ok().label for op in schema.get_all_operations() if isinstance(op, Ok)}
    assert {f"{label} positive" for label in documented} <= set(counts), counts
    assert {f"{label} negative" for label in documented} <= set(counts), counts


# Loaded from the file at import time (it needs no server): the test passes the server's
# address with each call.
# The live feed never ends by itself, so a generated request to it would only wait for its
# time-out; tests/e2e/test_stream.py checks its answers, refusals and statuses instead.
schema = schemathesis.openapi.from_dict(yaml.safe_load((ROOT / "openapi.yaml").read_text())).exclude(
    path="/events/stream"
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_contract_holds(case: Any, served: str, tally: Counter[str]) -> None:
    tally[f"{case.operation.label} {case.meta.generation.mode.value}"] += 1
    headers = dict(ADMIN) if case.method == "POST" else None
    case.call_and_validate(base_url=served, headers=headers, checks=CHECKS, timeout=30)
