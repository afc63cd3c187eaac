"""Load generators: wrk with a Lua script when it is installed, a bounded Python client
otherwise, and the batch poster that loads a generated history through POST /events."""

from __future__ import annotations

import asyncio
import collections
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from bench import history as hist
from bench.procs import BOOTSTRAP_KEY

HERE = Path(__file__).resolve().parent
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class LoadResult:
    """A bounded run of requests at a fixed concurrency."""

    tool: str
    requests: int
    seconds: float
    errors: int  # transport errors and non-2xx answers
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "statuses": self.statuses,
        }


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(url: str, script: str, args: Sequence[str], *, connections: int, seconds: float) -> LoadResult:
    """One wrk run (1 thread: the servers need the other core); the Lua `done` prints JSON."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / script),
        url,
        "--",
        *args,
    ]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    marker = run.stdout.rfind("BENCH-JSON ")
    if run.returncode != 0 or marker < 0:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stdout[-1500:]} {run.stderr[-1500:]}")
    data = json.loads(run.stdout[marker + len("BENCH-JSON ") :].splitlines()[0])
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "timeout", "status"))
    return LoadResult(
        "wrk",
        int(data["requests"]),
        float(data["duration_us"]) / 1e6,
        errors,
        float(data["p50_us"]) / 1000,
        float(data["p99_us"]) / 1000,
        {"non_2xx": int(data["status"])},
    )


# ---- the fallback client: raw asyncio sockets, keep-alive, bounded in time -------------------


async def _one_connection(
    host: str,
    port: int,
    make: Callable[[int], bytes],
    deadline: float,
    latencies: list[float],
    statuses: dict[str, int],
    counter: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            counter[0] += 1
            request = make(counter[0])
            started = time.perf_counter()
            writer.write(request)
            status, _ = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """An HTTP/1.1 response's status, and whether the server keeps the connection; its
    body (sized by Content-Length, as the service and the ceilings answer) is read and
    dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, keep = 0, True
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        match name.strip().lower():
            case b"content-length":
                length = int(value)
            case b"connection":
                keep = value.strip().lower() != b"close"
    if length:
        await reader.readexactly(length)
    return int(head[9:12]), keep


class KeepAlive:
    """One writer's keep-alive connections, one per server, on raw asyncio streams.

    About a tenth of httpx's CPU per request: where the load generator shares two cores
    with the servers it measures, what it does not spend the servers get. A connection
    that fails is dropped (the next request opens another) and the failure raised as
    ConnectionError, for the caller to retry.
    """

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._open: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def post(self, base: str, path: str, body: bytes, *, timeout: float = 30) -> int:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self._headers}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            async with asyncio.timeout(timeout):
                if base not in self._open:
                    parts = urlsplit(base)
                    self._open[base] = await asyncio.open_connection(parts.hostname, parts.port)
                reader, writer = self._open[base]
                writer.write(request)
                status, keep = await read_response(reader)
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ) as error:
            self._drop(base)
            raise ConnectionError(f"{type(error).__name__}: {error}") from error
        if not keep:
            self._drop(base)
        return status

    def _drop(self, base: str) -> None:
        if (connection := self._open.pop(base, None)) is not None:
            connection[1].close()

    async def aclose(self) -> None:
        for base in list(self._open):
            self._drop(base)


async def python_load(
    url: str, make: Callable[[int], bytes], *, connections: int, seconds: float
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    counter = [0]
    started = time.perf_counter()
    deadline = started + seconds
    # Bounded even if a server stops answering: the last requests get 30 s at most.
    await asyncio.wait_for(
        asyncio.gather(
            *(
                _one_connection(host, port, make, deadline, latencies, statuses, counter)
                for _ in range(connections)
            )
        ),
        seconds + 30,
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    errors = sum(n for s, n in statuses.items() if not s.startswith("2"))
    return LoadResult("python", len(latencies), elapsed, errors, pct(0.50), pct(0.99), statuses)


def post_event_body(n: int, tag: str) -> bytes:
    """The body the Lua script sends, for the Python fallback: one member.joined."""
    person, org = n % 20000, n % 97
    event = {
        "type": "member.joined",
        "idempotency_key": f"{tag}-1-{n}",
        "source": {
            "url": f"https://news.example.org/2025/07/{tag}-{n}",
            "outlet": "Bench Wire",
            "published_at": "2025-07-08",
            "lang": "en",
        },
        "data": {
            "person_id": f"bench-person-{person}",
            "person_name": f"Bench Person {person}",
            "org_id": f"bench-team-{org}",
            "org_name": f"Bench Team {org}",
            "role": "member",
            "on": "2025-07",
        },
    }
    return _encoder.encode(event)


def http_request(method: str, path: str, body: bytes | None = None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {BOOTSTRAP_KEY}",
    ]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def post_single_events(url: str, tag: str, *, connections: int, seconds: float) -> LoadResult:
    """Single-event POSTs /events, each with a new idempotency key, at a fixed concurrency."""
    if have_wrk():
        return await asyncio.to_thread(
            wrk, url, "post_event.lua", [tag, BOOTSTRAP_KEY], connections=connections, seconds=seconds
        )
    return await python_load(
        url,
        lambda n: http_request("POST", "/events", post_event_body(n, tag)),
        connections=connections,
        seconds=seconds,
    )


async def get_paths(url: str, paths_file: Path, *, connections: int, seconds: float) -> LoadResult:
    """GETs cycling through the paths in a file, one a line, at a fixed concurrency."""
    if have_wrk():
        return await asyncio.to_thread(
            wrk, url, "get_paths.lua", [str(paths_file)], connections=connections, seconds=seconds
        )
    paths = paths_file.read_text().split()
    return await python_load(
        url, lambda n: http_request("GET", paths[n % len(paths)]), connections=connections, seconds=seconds
    )


# ---- loading a generated history in batches ----------------------------------------------------


@dataclass
class Loaded:
    events: int = 0
    requests: int = 0
    seconds: float = 0.0
    failed: str | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Poster:
    """Posts batches of a History in order over one keep-alive connection.

    Events are encoded one by one ahead of time (`prepare`, or while the previous batch
    is in flight); claims stay unencoded until their targets' ids, returned by earlier
    POSTs, are known, then are bound and encoded as the batch is sent.
    """

    def __init__(self, base: str, history: hist.History, batch: int = 1000) -> None:
        self.base = base
        self.history = history
        self.batch = batch
        self.ids: dict[int, str] = {}
        self._ready: collections.deque[tuple[int, list[bytes | hist.Event]]] = collections.deque()
        self.client = httpx.AsyncClient(
            base_url=base,
            timeout=httpx.Timeout(300.0),
            headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}", "Content-Type": "application/json"},
        )

    async def close(self) -> None:
        await self.client.aclose()

    @property
    def prepared(self) -> int:
        return sum(len(parts) for _, parts in self._ready)

    def _generate(self, n: int) -> tuple[int, list[bytes | hist.Event]]:
        first = self.history.index
        parts: list[bytes | hist.Event] = []
        for event in self.history.take(n):
            parts.append(event if event["type"].startswith("claim.") else _encoder.encode(event))
        return first, parts

    def prepare(self, events: int) -> None:
        """Generate and encode `events` more events now, so that timing excludes it."""
        while events > 0:
            self._ready.append(self._generate(min(self.batch, events)))
            events -= self.batch

    async def flush(self) -> Loaded:
        """Post what was generated ahead and not sent (a run that stopped at its time
        bound leaves one batch): the log then holds all the generator has told."""
        return await self.run(events=self.prepared) if self.prepared else Loaded()

    def _body(self, parts: list[bytes | hist.Event]) -> bytes:
        encoded = [p if isinstance(p, bytes) else _encoder.encode(hist.bind([p], self.ids)[0]) for p in parts]
        return b"[" + b",".join(encoded) + b"]"

    async def run(
        self,
        *,
        seconds: float | None = None,
        events: int | None = None,
        progress: Callable[[int], None] | None = None,
        prepared_only: bool = False,
    ) -> Loaded:
        """Post until `seconds` have passed or `events` are stored, whichever comes first
        (or, with prepared_only, until the prepared events run out)."""
        done = Loaded()
        started = time.perf_counter()
        while True:
            if not self._ready:
                if prepared_only:
                    done.failed = "ran out of prepared events"
                    break
                self._ready.append(
                    self._generate(self.batch if events is None else min(self.batch, events - done.events))
                )
            first, parts = self._ready.popleft()
            request = asyncio.ensure_future(self.client.post("/events", content=self._body(parts)))
            await asyncio.sleep(0)
            left = None if events is None else events - done.events - len(parts)
            if not self._ready and not prepared_only and (left is None or left > 0):
                # Encoded while the server works. Its claims refer at least CLAIM_LAG
                # events back, so never to the batch in flight.
                self._ready.append(self._generate(self.batch if left is None else min(self.batch, left)))
            response = await request
            if response.status_code not in (200, 201):
                done.failed = f"POST /events answered {response.status_code}: {response.text[:500]}"
                break
            answers = msgspec.json.decode(response.content)["events"]
            for i, answer in enumerate(answers):
                if first + i in self.history.targets:
                    self.ids[first + i] = answer["event_id"]
            done.events += len(parts)
            done.requests += 1
            done.seconds = time.perf_counter() - started
            if progress is not None:
                progress(done.events)
            if (seconds is not None and done.seconds >= seconds) or (
                events is not None and done.events >= events
            ):
                break
        return done
