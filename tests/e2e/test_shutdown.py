"""SIGTERM under load: `serve` stops taking requests, answers those in flight, hands the
projector's lock over and closes its pools; no request in flight is lost or answered
with a 5xx, and every acknowledged event is stored once.

Injected: one SIGTERM to a `serve` process while 8 clients post single events and
batches and 4 read rosters, every request on a new connection (so that a request is
either in flight, and must be answered, or refused at connect once the server stops
listening). A connection the kernel had queued but the server had not yet accepted when
it stopped listening is closed without an answer: such a request was never taken, which
for a POST the log proves (none of its events is stored). A second `serve` stands by for
the projector's election. Counted: answers by status, refusals, unanswered requests,
acknowledged events, stored events, and how long the standby took to become the active
projector.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import ADMIN
from tests.e2e.server import environment, serving

WRITERS = 8
READERS = 4
# A connection closed without an answer (never a timeout: that would be a hang).
CLOSED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def event(writer: int, n: int, k: int = 0) -> dict[str, Any]:
    return {
        "type": "member.joined",
        "idempotency_key": f"w{writer}-{n}-{k}",
        "source": {"url": f"https://example.org/{writer}/{n}/{k}", "published_at": "2025-07-08"},
        "data": {
            "person_id": f"p-{writer}-{n}-{k}",
            "person_name": "Someone",
            "org_id": "msl",
            "org_name": "MSL",
            "on": "2025-07",
        },
    }


def test_sigterm_answers_every_request_in_flight_and_hands_the_projector_over(
    fresh_database: str, tmp_path: Path
) -> None:
    env = {**environment(fresh_database), "HIRING_NEWS_LOG_LEVEL": "info"}
    with (
        serving(env, log=tmp_path / "first.log") as (base, first),
        serving(env, log=tmp_path / "second.log") as (
            standby,
            _,
        ),
    ):
        assert httpx.get(f"{base}/readyz").json()["projector"] == "active"
        assert httpx.get(f"{standby}/readyz").json()["projector"] == "standby"
        statuses: dict[int, int] = {}
        refused = 0
        unanswered: list[set[str]] = []  # the keys of POSTs closed without an answer
        acknowledged: set[str] = set()
        stop = asyncio.Event()

        async def write(writer: int) -> None:
            nonlocal refused
            n = 0
            while not stop.is_set():
                n += 1
                body: Any = event(writer, n) if n % 2 else [event(writer, n, k) for k in range(20)]
                async with httpx.AsyncClient(timeout=60, headers={**ADMIN, "Connection": "close"}) as http:
                    try:
                        answer = await http.post(f"{base}/events", json=body)
                    except httpx.ConnectError:
                        refused += 1
                        await asyncio.sleep(0.05)
                        continue
                    except CLOSED:
                        unanswered.append(
                            {e["idempotency_key"] for e in (body if isinstance(body, list) else [body])}
                        )
                        continue
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code in (200, 201):
                    acknowledged.update(e["idempotency_key"] for e in answer.json()["events"])

        async def read() -> None:
            nonlocal refused
            while not stop.is_set():
                async with httpx.AsyncClient(timeout=60, headers={"Connection": "close"}) as http:
                    try:
                        answer = await http.get(f"{base}/orgs/msl/roster")
                    except (httpx.ConnectError, *CLOSED):
                        refused += 1
                        await asyncio.sleep(0.05)
                        continue
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        async def run() -> float:
            tasks = [asyncio.create_task(write(w)) for w in range(WRITERS)]
            tasks += [asyncio.create_task(read()) for _ in range(READERS)]
            await asyncio.sleep(2)
            first.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            taken_over = None
            deadline = signalled + 40
            while time.monotonic() < deadline:
                if taken_over is None:
                    role = httpx.get(f"{standby}/readyz").json()["projector"]
                    if role == "active":
                        taken_over = time.monotonic() - signalled
                if first.poll() is not None and taken_over is not None:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*tasks)
            assert taken_over is not None, "the standby never became the active projector"
            return taken_over

        taken_over = asyncio.run(run())
        assert first.wait(timeout=30) == 0  # stopped by itself, cleanly
        assert statuses.get(201, 0) > 0 and refused > 0, (statuses, refused)
        assert all(status < 500 for status in statuses), statuses
        assert taken_over < 10, taken_over

        async def stored() -> list[str]:
            conn = await asyncpg.connect(fresh_database)
            try:
                return [r[0] for r in await conn.fetch("SELECT idempotency_key FROM events")]
            finally:
                await conn.close()

        keys = asyncio.run(stored())
        assert len(keys) == len(set(keys))
        assert acknowledged <= set(keys)
        # A POST closed without an answer was never taken: nothing of it is stored.
        assert all(not (batch & set(keys)) for batch in unanswered), unanswered
        # The standby carries the projection on to the head.
        roster = httpx.get(f"{standby}/orgs/msl/roster", params={"on": "2025-08-01"}).json()
        assert roster["as_of"] == len(keys)
