"""The lock (requirements/) holds what pyproject.toml asks for, and the Pythons claimed are
the Pythons tested. A failure here means: run `bash requirements/lock.sh` (README)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

REFRESH = "run `bash requirements/lock.sh` and commit requirements/"
_PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(?: ;[^\\]*)? \\\n((?:    --hash=sha256:[0-9a-f]{64}.*\n)+)", re.M
)


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def pins(name: str) -> dict[str, Version]:
    text = (ROOT / "requirements" / name).read_text()
    found: dict[str, Version] = {canonicalize_name(m[1]): Version(m[2]) for m in _PIN.finditer(text)}
    lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(found) == len(lines), f"{name}: a line without a pin or its hashes; {REFRESH}"
    return found


def test_the_lock_pins_what_pyproject_asks_for() -> None:
    project = pyproject()
    extras = project["project"]["optional-dependencies"]
    wanted = {
        "dev.txt": [
            *project["project"]["dependencies"],
            *extras["dev"],
            *extras["bench"],
            *project["build-system"]["requires"],
        ],
        "runtime.txt": [*project["project"]["dependencies"], *project["build-system"]["requires"]],
    }
    for lock, requirements in wanted.items():
        pinned = pins(lock)
        for line in requirements:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{lock} lacks {name}: {REFRESH}"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{lock} pins {name} {pinned[name]}, outside {requirement.specifier}: {REFRESH}"
            )


def test_runtime_pins_are_the_dev_pins() -> None:
    dev, runtime = pins("dev.txt"), pins("runtime.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_pythons_claimed_are_the_pythons_tested() -> None:
    project = pyproject()["project"]
    supported = SpecifierSet(project["requires-python"])
    minors = [f"3.{minor}" for minor in range(8, 20) if Version(f"3.{minor}") in supported]
    classifiers = [
        c.removeprefix("Programming Language :: Python :: ")
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert classifiers == minors
    script = (ROOT / "tests" / "run.sh").read_text()
    assert re.search(rf"^LOWEST={re.escape(minors[0])} ", script, re.M), "tests/run.sh's LOWEST"
    assert re.search(rf"^HIGHEST={re.escape(minors[-1])} ", script, re.M), "tests/run.sh's HIGHEST"
    tool = pyproject()["tool"]
    assert tool["ruff"]["target-version"] == "py" + minors[0].replace(".", "")
    assert tool["mypy"]["python_version"] == minors[0]
