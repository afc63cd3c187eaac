"""Run a real `hiring-news serve` process for a test, and always stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import BOOTSTRAP_KEY

CLI = [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(database_url: str | None, data_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_READ_URL"}}
    env["HIRING_NEWS_BOOTSTRAP_KEY"] = BOOTSTRAP_KEY
    env["HIRING_NEWS_LOG_LEVEL"] = "warning"
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if data_dir is not None:
        env["HIRING_NEWS_DATA_DIR"] = str(data_dir)
    return env


def cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@contextmanager
def serving(
    env: dict[str, str], cwd: Path | None = None, log: Path | None = None, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = port or free_port()
    stderr = None if log is None else log.open("ab")
    process = start(env, port, cwd=cwd, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        ready(base, process)
        yield base, process
    finally:
        stop(process)
        if stderr is not None:
            stderr.close()


def start(
    env: dict[str, str], port: int, cwd: Path | None = None, stderr: Any = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=cwd, stderr=stderr)


def ready(base: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"serve did not become ready in {seconds:.0f} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)
