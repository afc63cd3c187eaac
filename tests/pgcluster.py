"""A private PostgreSQL cluster for one test, made with the machine's own binaries.

Tests that stop and start PostgreSQL must never touch a server other tests share (the
one at DATABASE_URL, or the session's embedded one): this makes a throwaway cluster with
`initdb` in a temporary directory, on a free port, and removes it afterwards whatever
happens (`pg_ctl stop -m immediate`, then the directory).

`private_standby` adds a streaming replica of such a cluster: `pg_basebackup -R` on a
port of its own, through a physical replication slot, hot (it answers reads).

PostgreSQL refuses to run as root, and CI runs as root: the binaries are then run as the
`postgres` system user (`runuser -u postgres --`), in a directory it owns.

No pytest here: bench/standby.py makes its clusters with this module too.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# Where Debian's packages put the server binaries, when pg_config is not on PATH.
_BINDIRS = "/usr/lib/postgresql/*/bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when this machine has none."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob(_BINDIRS), reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def unavailable() -> str | None:
    """Why a private cluster cannot be made here, or None if it can."""
    if bindir() is None:
        return f"no PostgreSQL server binaries (initdb, pg_ctl) via pg_config or in {_BINDIRS}"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser, and PostgreSQL refuses to run as root"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run PostgreSQL as"
    return None


class Cluster:
    """One cluster: its data directory, its port, and pg_ctl to stop and start it."""

    def __init__(self, root: Path, binaries: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "postgresql.log"
        self.port = port
        self._bin = binaries

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def _checked(self, program: str, *args: str) -> None:
        done = self._run(program, *args)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}): {done.stderr}")

    def init(self) -> None:
        self._checked(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
            "--locale=C",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockets}'",
            # A test's data is thrown away: no need to wait for the disk.
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "60",
            # Ready to be streamed to a standby (`private_standby`); initdb's pg_hba.conf
            # already trusts replication connections from 127.0.0.1.
            "wal_level": "replica",
            "max_wal_senders": "4",
            "max_replication_slots": "4",
        }
        self._configure(settings)

    def _configure(self, settings: dict[str, str]) -> None:
        # Appended: the last setting of a name in postgresql.conf wins.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    @property
    def slot(self) -> str:
        """The replication slot on its primary in which a standby's WAL is kept for it."""
        return f"hn_standby_{self.port}"

    def base_backup_of(self, primary: Cluster) -> None:
        """This cluster's data directory as a standby of `primary`: a base backup with
        the WAL streamed alongside, `-R` writing standby.signal and primary_conninfo, a
        slot so the primary keeps what the standby has not received, and a fast
        checkpoint (a spread one may take minutes on a primary that has been written
        to); then this cluster's own port and socket directory over the primary's."""
        self._checked(
            "pg_basebackup", "-D", str(self.data), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", "postgres", "-R", "-X", "stream", "-C", "-S", self.slot, "--no-sync", "--checkpoint=fast",
        )  # fmt: skip
        self._configure(
            {"port": str(self.port), "unix_socket_directories": f"'{self.sockets}'", "hot_standby": "on"}
        )

    def start(self) -> None:
        self._checked("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` terminates every session (rolling back what is in
        flight) and shuts down cleanly; `immediate` is a crash."""
        self._checked("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def psql(self, query: str, *, database: str = "postgres", check: bool = True) -> str:
        """One statement through psql on this cluster, its answer as unaligned text
        (without `check`, '' when it fails: for clean-ups)."""
        done = self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
            "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query, timeout=30,
        )  # fmt: skip
        if done.returncode != 0:
            if check:
                raise RuntimeError(f"psql -c {query!r} failed ({done.returncode}): {done.stderr}")
            return ""
        return done.stdout.strip()

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def _private(prefix: str) -> Iterator[Cluster]:
    """A cluster's directory and free port, not yet initialised; stopped (immediately)
    and removed afterwards."""
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    binaries = bindir()
    assert binaries is not None
    # Not under pytest's tmp_path: its parents are private to the user running the
    # tests, and the postgres user must reach the directory.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = Cluster(root, binaries, free_port())
    try:
        cluster.sockets.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (root, cluster.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A running cluster of our own; stopped (immediately) and removed afterwards."""
    with _private("hn-pgcluster-") as cluster:
        cluster.init()
        cluster.start()
        yield cluster


@contextlib.contextmanager
def private_standby(primary: Cluster, *, seconds: float = 60) -> Iterator[Cluster]:
    """A running hot standby of `primary` (from `private_cluster`), streaming from it,
    on its own port; stopped (immediately) and removed afterwards, its slot dropped."""
    with _private("hn-pgstandby-") as standby:
        try:
            standby.base_backup_of(primary)
            standby.start()
            _wait(primary, f"{_streaming(standby)} = 1", seconds, "the standby streaming")
            yield standby
        finally:
            if (standby.data / "postmaster.pid").exists():
                standby._run("pg_ctl", "-D", str(standby.data), "-m", "immediate", "-w", "-t", "30", "stop")
            # A slot left behind would keep the primary's WAL for the standby for ever.
            with contextlib.suppress(RuntimeError):
                _wait(primary, f"{_streaming(standby)} = 0", 10, "the standby's sender gone")
            primary.psql(
                f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                f"WHERE slot_name = '{standby.slot}' AND NOT active",
                check=False,
            )


def _streaming(standby: Cluster) -> str:
    """SQL on the primary: whether (1) or not (0) it streams to this standby."""
    return (
        "(SELECT count(*) FROM pg_replication_slots AS s JOIN pg_stat_replication AS r ON r.pid = s.active_pid "
        f"WHERE s.slot_name = '{standby.slot}' AND r.state = 'streaming')"
    )


def _wait(cluster: Cluster, condition: str, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while cluster.psql(f"SELECT {condition}", check=False) != "t":
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {seconds} s: {what}")
        time.sleep(0.05)
