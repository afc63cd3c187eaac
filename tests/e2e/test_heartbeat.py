"""`hiring-news project --heartbeat FILE` as deploy/ runs it: two real projector processes on
one database each keep their file fresh, active and standby alike, so the deployments'
probe passes on both; once they stop, the files are gone and the probe fails."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.server import environment
from tests.faults import Proc, wait_until
from tests.unit.test_heartbeat import probe


def role(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["role"])
    except (FileNotFoundError, ValueError):
        return None


def test_active_and_standby_both_beat_and_pass_the_probe(fresh_database: str, tmp_path: Path) -> None:
    env = {**environment(fresh_database), "HIRING_NEWS_LOG_LEVEL": "info"}
    files = [tmp_path / name / "projector-heartbeat" for name in "ab"]
    procs = [
        Proc(["project", "--heartbeat", str(path)], env, tmp_path / f"project-{path.parent.name}.log")
        for path in files
    ]
    try:
        # The first beat may say "starting"; the next, 5 s later, the role it was elected to.
        wait_until(
            lambda: sorted(role(path) or "" for path in files) == ["active", "standby"],
            60,
            "an active and a standby beat",
        )
        assert [probe(path) for path in files] == [0, 0]
    finally:
        codes = [proc.stop() for proc in procs]
    assert codes == [0, 0], [proc.tail() for proc in procs]
    assert not any(path.exists() for path in files)
    assert all(probe(path) != 0 for path in files)
