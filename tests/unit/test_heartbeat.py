"""service.heartbeat: the file `project --heartbeat` keeps fresh, and the probe deploy/ runs
on it (taken from deploy/k8s/projector.yaml, run as a real process on a real file)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from service.heartbeat import STALE_SECONDS, beat
from service.projector import Projector

PROJECTOR_YAML = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "projector.yaml"


def probe(path: Path) -> int:
    """The projector's liveness probe from the manifest, on `path`: its exit status."""
    deployment = next(
        doc for doc in yaml.safe_load_all(PROJECTOR_YAML.read_text()) if doc["kind"] == "Deployment"
    )
    command: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"][
        "command"
    ]
    assert command[0] == "python"
    argv = [sys.executable, *command[1:-1], str(path)]
    return subprocess.run(argv, capture_output=True, timeout=30).returncode


async def until(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.01)


async def test_it_beats_while_the_loop_turns_stops_when_stuck_and_goes_when_cancelled(tmp_path: Path) -> None:
    # A projector that is never run: its loop "turns" when the test says so.
    projector = Projector("postgresql://127.0.0.1:1/never-used")
    path = tmp_path / "not-yet" / "heartbeat"
    task = asyncio.create_task(beat(projector, path, every=0.01, stuck_after=5))
    try:
        await until(path.exists)
        assert json.loads(path.read_text()) == {"role": "starting", "position": None}
        projector.role, projector.position = "active", 42
        await until(lambda: json.loads(path.read_text())["role"] == "active")
        assert json.loads(path.read_text()) == {"role": "active", "position": 42}

        # Stuck: the loop last turned longer ago than stuck_after, so the file ages.
        projector.turned_at = time.monotonic() - 10
        await asyncio.sleep(0.05)  # let a beat under way finish
        os.utime(path, (0, 0))
        await asyncio.sleep(0.2)
        assert path.stat().st_mtime == 0

        projector.turned_at = time.monotonic()
        await until(lambda: path.stat().st_mtime > 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not path.exists(), "a stopped projector's file stayed behind"
    assert not list(path.parent.iterdir()), "a partial file stayed behind"


def test_the_probe_passes_a_fresh_file_only(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    assert probe(path) != 0, "no file"
    path.write_text("{}\n")
    assert probe(path) == 0
    old = time.time() - STALE_SECONDS - 5
    os.utime(path, (old, old))
    assert probe(path) != 0, "a stale file"
