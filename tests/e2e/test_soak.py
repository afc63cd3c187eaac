"""The soak (bench/soak.py) for two minutes, as a person runs it: its own processes (two
API replicas and the projector), its own database, on the server at DATABASE_URL or, with
none, on the embedded default it starts itself. Everything it checks at the end must hold,
and it must have sampled memory and lag throughout."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT

MINUTES = 2
PROCESSES = ("api-1", "api-2", "projector")


def soak(tmp_path: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIRING_NEWS_")}
    argv = [sys.executable, "-m", "bench.soak", "--minutes", str(MINUTES)]
    argv += ["--json", str(tmp_path / "soak.json"), "--plot", str(tmp_path / "soak.svg")]
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=MINUTES * 60 + 600)
    except subprocess.TimeoutExpired:
        # SIGTERM: the soak stops its processes and drops its database on the way out.
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
        pytest.fail(f"the soak did not end in time:\n{out[-3000:]}\n{err[-3000:]}")
    assert process.returncode == 0, f"the soak failed:\n{out[-4000:]}\n{err[-4000:]}"
    results: dict[str, object] = json.loads((tmp_path / "soak.json").read_text())
    return results


def test_a_two_minute_soak_keeps_every_invariant(tmp_path: Path) -> None:
    results = soak(tmp_path)
    assert results["database"] == ("server" if os.environ.get("DATABASE_URL") else "embedded")

    invariants = results["invariants"]
    assert isinstance(invariants, dict) and len(invariants) >= 6
    assert all(found["held"] for found in invariants.values()), invariants
    assert "cache equals a rebuild" in invariants

    summary = results["summary"]
    assert isinstance(summary, dict)
    # The traffic the soak is for: claims, reorgs, deliberate replays, races and conflicts.
    assert summary["events"] > 1000 and summary["reads"] > 500
    for what in ("claims", "reorgs", "replays", "races", "conflicts"):
        assert summary[what] > 0, what

    # Memory and lag sampled about every second from the start of the load to its end.
    samples = results["samples"]
    assert isinstance(samples, list)
    load = [s for s in samples if s["phase"] == "load"]
    assert len(load) >= MINUTES * 60 * 0.75
    assert load[0]["t"] < 5 and load[-1]["t"] > MINUTES * 60 - 5
    assert max(b["t"] - a["t"] for a, b in itertools.pairwise(samples)) < 10
    for sample in samples:
        assert all(sample["rss_mib"][name] > 10 for name in PROCESSES), sample
        assert sample["postgres"]["backends"] > 0 and sample["lag"] >= 0
        assert set(sample["ready"]) == {"api-1", "api-2"}
    assert samples[-1]["lag"] == 0
    # Ready all along but for a probe now and then that a busy machine makes wait too long.
    for name in ("api-1", "api-2"):
        assert summary["not_ready"][name] <= len(samples) / 4, summary["not_ready"]

    root = ET.parse(tmp_path / "soak.svg").getroot()  # noqa: S314 (the soak's own file)
    names = {line.get("data-name") for line in root.iter("{http://www.w3.org/2000/svg}polyline")}
    assert {*PROCESSES, "head − checkpoint"} <= names
