"""`hiring-news project --heartbeat FILE`: a file an orchestrator's probe can check.

`project` serves no HTTP, so there is no /healthz to probe. Instead it rewrites FILE every
BEAT_SECONDS, with its role and position in one line of JSON, for as long as its
projector's loop keeps going round (about every second whatever the role, and after every
batch). The probes in deploy/ check only the file's age: fresh means the process runs, its
event loop is not blocked, and its projector has not stopped nor hung on a query, which
would keep the election's lock from the standbys. A standby beats like the active one: it
is healthy, and ready to take over. Stuck for STUCK_SECONDS, the file goes stale, a
liveness probe restarts the process, and its session ends, lock and all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from service.logging import get_logger

if TYPE_CHECKING:
    from service.projector import Projector

log = get_logger(__name__)

BEAT_SECONDS: Final = 5.0
# A batch of 1000 events takes about a second (bench/README.md), and a connection attempt
# gives up after asyncpg's 60 s: past both, the loop is stuck, not busy.
STUCK_SECONDS: Final = 120.0
# The age the probes in deploy/ allow: six beats missed.
STALE_SECONDS: Final = 30


async def beat(
    projector: Projector, path: Path, *, every: float = BEAT_SECONDS, stuck_after: float = STUCK_SECONDS
) -> None:
    """Rewrite `path` every `every` seconds while the projector's loop has turned within
    `stuck_after` seconds; remove it when cancelled, so a process that stopped does not
    look alive."""
    stuck = False
    try:
        while True:
            if time.monotonic() - projector.turned_at < stuck_after:
                write(path, projector)
                stuck = False
            elif not stuck:
                stuck = True
                log.error("projector stuck: heartbeat stopped", path=str(path), role=projector.role)
            await asyncio.sleep(every)
    finally:
        remove(path)


def write(path: Path, projector: Projector) -> None:
    """One beat, replacing the file whole so a probe never reads half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"role": projector.role, "position": projector.position}) + "\n"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(line, encoding="utf-8")
    os.replace(partial, path)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
