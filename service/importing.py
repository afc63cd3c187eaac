"""`hiring-news import FILE.jsonl`: one event per line, appended in batches.

Each batch is one transaction. A bad line stops the import with its line number, and
nothing of its batch is stored; batches before it are. Lines without an idempotency
key get one derived from their content, so running the same file twice stores nothing
twice and an interrupted import resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

from service import events as ev
from service import store
from service.store import Conn
from service.wire import field_error

BATCH = 500


class BadLine(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Report:
    stored: int = 0
    replayed: int = 0
    lines: int = 0
    last_position: int = 0  # the last position stored or replayed: what to wait for


def decode_line(number: int, line: bytes) -> ev.Event | None:
    """The event of one line (None for a blank one), keyed for idempotent re-runs."""
    if not line.strip():
        return None
    try:
        decoded = ev.decoder.decode(line)
    except msgspec.ValidationError as error:
        problem = field_error(str(error))
        raise BadLine(number, f"{problem.field}: {problem.reason}") from None
    except msgspec.DecodeError as error:
        raise BadLine(number, f"malformed JSON: {error}") from None
    if isinstance(decoded, list):
        raise BadLine(number, "one event object per line, not an array")
    event: ev.Event = decoded
    if event.idempotency_key is None:
        event = ev.keyed(event)
    return event


async def import_lines(
    conn: Conn,
    lines: Iterable[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH,
) -> Report:
    report = Report()
    batch: list[ev.Event] = []
    numbers: list[int] = []
    keys: set[str | None] = set()

    async def flush() -> None:
        try:
            appended = await store.append(conn, batch, api_key_name="import")
        except store.AppendError as error:
            raise BadLine(numbers[error.index], f"{error.pointer}: {error.reason}") from None
        report.stored += sum(not a.replayed for a in appended)
        report.replayed += sum(a.replayed for a in appended)
        report.last_position = max(report.last_position, *(a.position for a in appended))
        if progress is not None:
            progress(len(batch))
        batch.clear()
        numbers.clear()
        keys.clear()

    for number, line in enumerate(lines, start=1):
        report.lines = number
        event = decode_line(number, line)
        if event is None:
            continue
        if event.idempotency_key in keys:
            # The same claim twice in one batch is one claim; a different one is a conflict
            # the store reports. Flushing first lets the store decide with one rule.
            await flush()
        batch.append(event)
        numbers.append(number)
        keys.add(event.idempotency_key)
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
    return report
