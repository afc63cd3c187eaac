"""deploy/postgres/*.sh on this machine's PostgreSQL 15, outside containers (there is no
Docker engine here): a primary set up by primary-init.sh, run as the postgres image runs
it; a standby copied with the very pg_basebackup command of replica-entrypoint.sh; and
on them the compose file's processes: the projector alone, and an API replica that never
projects, writing to the primary and reading from the standby."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest

from tests import pgcluster
from tests.bodies import joined
from tests.conftest import ADMIN
from tests.e2e.server import environment, free_port
from tests.faults import Proc, wait_until

pytestmark = pytest.mark.skipif(pgcluster.unavailable() is not None, reason=str(pgcluster.unavailable()))

SCRIPTS: Final = Path(__file__).resolve().parents[2] / "deploy" / "postgres"
PASSWORD: Final = "replication-password"


def as_postgres(
    argv: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run as the postgres user when root (PostgreSQL refuses root), with exactly `env` added."""
    pairs = [f"{name}={value}" for name, value in env.items()]
    command = ["env", *pairs, *argv]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def owned_by_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)


def basebackup(script: str) -> tuple[dict[str, str], list[str]]:
    """The environment and arguments of replica-entrypoint.sh's pg_basebackup, unexpanded."""
    joined_lines = re.sub(r"\\\n\s*", " ", script)
    (line,) = [line for line in joined_lines.splitlines() if "gosu postgres pg_basebackup" in line]
    words = shlex.split(line)
    gosu = words.index("gosu")
    env = dict(word.split("=", 1) for word in words[:gosu])
    assert words[gosu + 1 : gosu + 3] == ["postgres", "pg_basebackup"]
    return env, words[gosu + 3 :]


def expand(words: list[str], values: dict[str, str]) -> list[str]:
    return [values.get(word, word) for word in words]


@contextlib.contextmanager
def standby_dir() -> Iterator[pgcluster.Cluster]:
    binaries = pgcluster.bindir()
    assert binaries is not None
    root = Path(tempfile.mkdtemp(prefix="hn-standby-"))
    cluster = pgcluster.Cluster(root, binaries, free_port())
    try:
        cluster.sockets.mkdir()
        owned_by_postgres(root)
        owned_by_postgres(cluster.sockets)
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            as_postgres(
                [str(binaries / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w", "stop"], {}
            )
        shutil.rmtree(root, ignore_errors=True)


def test_the_compose_databases_and_processes(tmp_path: Path) -> None:
    binaries = pgcluster.bindir()
    assert binaries is not None
    with pgcluster.private_cluster() as primary, standby_dir() as standby:
        # What the postgres image does around its init scripts: scram for every host
        # connection, appended after initdb's lines. initdb's own replication lines for
        # 127.0.0.1 go, so that only primary-init.sh's line can let the copy in.
        hba = primary.data / "pg_hba.conf"
        lines = [line for line in hba.read_text().splitlines() if not re.match(r"host\s+replication", line)]
        hba.write_text("\n".join([*lines, "host all all all scram-sha-256", ""]))
        script = primary.root / "primary-init.sh"
        shutil.copy(SCRIPTS / "primary-init.sh", script)
        owned_by_postgres(script)
        init = as_postgres(
            ["bash", str(script)],
            {
                "PGHOST": str(primary.sockets),
                "PGPORT": str(primary.port),
                "PGDATA": str(primary.data),
                "POSTGRES_USER": "postgres",
                "POSTGRES_DB": "postgres",
                "POSTGRES_REPLICATION_PASSWORD": PASSWORD,
            },
        )
        assert init.returncode == 0, init.stdout + init.stderr
        reload = as_postgres([str(binaries / "pg_ctl"), "-D", str(primary.data), "reload"], {})
        assert reload.returncode == 0, reload.stderr

        env, args = basebackup((SCRIPTS / "replica-entrypoint.sh").read_text())
        values = {
            "$POSTGRES_REPLICATION_PASSWORD": PASSWORD,
            "$PRIMARY_HOST": "127.0.0.1",
            "5432": str(primary.port),
            "$PGDATA": str(standby.data),
        }
        wrong = as_postgres(
            [str(binaries / "pg_basebackup"), *expand(args, values)],
            {**{name: values.get(value, value) for name, value in env.items()}, "PGPASSWORD": "wrong"},
        )
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr, wrong.stderr
        shutil.rmtree(standby.data, ignore_errors=True)
        copy = as_postgres(
            [str(binaries / "pg_basebackup"), *expand(args, values)],
            {name: values.get(value, value) for name, value in env.items()},
        )
        assert copy.returncode == 0, copy.stderr
        assert (standby.data / "standby.signal").exists()
        # The copy carries the primary's settings (its port among them); the compose
        # file's command line gives the standby its own.
        with (standby.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {standby.port}\nunix_socket_directories = '{standby.sockets}'\n")
            conf.write("hot_standby = on\nhot_standby_feedback = on\n")
        standby.start()

        run_the_processes(primary, standby, tmp_path)


def psql(cluster: pgcluster.Cluster, sql: str) -> str:
    done = cluster._run(
        "psql", "-h", str(cluster.sockets), "-p", str(cluster.port), "-U", "postgres", "-Atc", sql
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run_the_processes(primary: pgcluster.Cluster, standby: pgcluster.Cluster, tmp_path: Path) -> None:
    assert psql(standby, "SELECT pg_is_in_recovery()") == "t"
    wait_until(
        lambda: (
            psql(primary, "SELECT application_name, state FROM pg_stat_replication") == "replica_1|streaming"
        ),
        30,
        "the standby streaming through its slot",
    )
    assert psql(primary, "SELECT slot_name, active FROM pg_replication_slots") == "replica_1|t"

    env = {**environment(primary.dsn), "DATABASE_READ_URL": standby.dsn, "HIRING_NEWS_LOG_LEVEL": "info"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    projector = Proc(["project", "--heartbeat", str(tmp_path / "heartbeat")], env, tmp_path / "project.log")
    api = Proc(["serve", "--port", str(port), "--no-projector"], env, tmp_path / "serve.log")
    try:
        wait_until(lambda: ready(base), 60, "the API replica ready")
        assert httpx.get(f"{base}/readyz").json()["projector"] == "off"
        posted = httpx.post(f"{base}/events", json=joined("ruoming-pang"), headers=ADMIN, timeout=30)
        assert posted.status_code == 201, posted.text
        # Read back through the standby: asked at the head the primary gives, answered
        # once the standby's projection has it (the projector writes it on the primary).
        timeline = httpx.get(f"{base}/people/ruoming-pang/timeline", timeout=30)
        assert timeline.status_code == 200, timeline.text
        assert "msl" in timeline.text
        # The read went to the standby: the API's read pool is connected there.
        assert (
            int(psql(standby, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hiring-news'"))
            > 0
        )
    finally:
        codes = [api.stop(), projector.stop()]
    assert codes == [0, 0], [api.tail(), projector.tail()]


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
