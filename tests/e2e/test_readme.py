"""The README tells the truth: its walk-through, run top to bottom against a real serve on
a fresh database, prints what it shows; its configuration table names what the service reads."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import ENVIRONMENT
from tests import readme
from tests.conftest import ROOT
from tests.e2e.server import environment, serving

README = (ROOT / "README.md").read_text()


def test_the_walk_through_prints_what_it_shows(fresh_database: str, tmp_path: Path) -> None:
    steps = readme.steps(README)
    shown = [step for step in steps if step.shown]
    assert len(steps) >= 20 and len(shown) >= 18, "the walk-through's commands were not all found"
    env = environment(fresh_database)
    with serving(env) as (base, _):
        # The CLI as a reader runs it: their database, no key of the tests', no log level set.
        reader = {
            k: v for k, v in env.items() if k not in {"HIRING_NEWS_LOG_LEVEL", "HIRING_NEWS_BOOTSTRAP_KEY"}
        }
        printed = readme.run(steps, base.removeprefix("http://"), reader, tmp_path)
    wrong = [
        f"README line {step.line}: {step.command.splitlines()[0]}\n  shows:\n    "
        + "\n    ".join(step.shown)
        + "\n  printed:\n    "
        + "\n    ".join(out.rstrip().splitlines())
        for step, out in zip(steps, printed, strict=True)
        if not readme.matches(step.shown, out)
    ]
    assert not wrong, "\n\n".join(wrong)


def test_the_comparison_allows_elisions_and_wrapping() -> None:
    assert readme.matches(('{"a":1,', ' "b":"…"}'), '{"a":1,"b":"x y"}\n')
    assert not readme.matches(('{"a":2,…}',), '{"a":1,"b":2}')
    assert readme.matches(("title", "…", "last"), "title\nx\ny\nlast   \n\n")
    assert not readme.matches(("title", "last"), "title\nx\nlast")


def test_the_configuration_table_names_every_variable() -> None:
    section = README[README.index("## Configuration") : README.index("## Layout")]
    documented = set(re.findall(r"^\| `([A-Z_]+)`", section, re.MULTILINE))
    documented |= {
        name for pair in re.findall(r"^\| `([A-Z_]+)` / `([A-Z_]+)`", section, re.MULTILINE) for name in pair
    }
    assert documented == {name for name, _, _ in ENVIRONMENT}
