"""The README's walk-through as a script: its commands in order, and the outputs it shows.

Between `<!-- walk-through -->` and `<!-- /walk-through -->`, every ```sh block is read
as a reader would type it: a command (continued by a trailing backslash or an open
quote), then the `# ` lines right below it, which show its output. Comment lines before a
command are prose. A shown output is compared with what the command printed (its standard
output, or its standard error if it printed nothing else): `…` stands for anything; a
single line of output may be shown wrapped over several comment lines, the later ones
indented; several lines are compared line by line, a line of `…` alone standing for any
number of lines.

`python -m tests.readme URL` runs it against a service at URL (the CLI on the same
database) and prints each command with what it printed: what to paste when the
walk-through changes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

START = "<!-- walk-through -->"
END = "<!-- /walk-through -->"
ELLIPSIS = "…"


@dataclass(frozen=True)
class Step:
    line: int  # of the README, where the command starts
    command: str
    shown: tuple[str, ...]  # the output shown, without the "# " prefixes


def steps(readme: str) -> list[Step]:
    start, end = readme.index(START), readme.index(END)
    first_line = readme[:start].count("\n") + 1
    found: list[Step] = []
    in_block = False
    pending: list[str] = []
    pending_line = 0
    shown: list[str] = []
    open_quote = False

    def close() -> None:
        nonlocal pending, shown
        if pending:
            found.append(Step(pending_line, "\n".join(pending), tuple(shown)))
        pending, shown = [], []

    for number, line in enumerate(readme[start:end].splitlines(), start=first_line):
        if line.startswith("```"):
            if in_block:
                close()
            in_block = line.strip() == "```sh" and not in_block
            continue
        if not in_block:
            continue
        if open_quote or (pending and pending[-1].endswith("\\") and not shown):
            pending.append(line)
            open_quote ^= line.count("'") % 2 == 1
            continue
        if not line.strip():
            close()
        elif line.startswith("#"):
            if pending:
                shown.append(line[2:] if line.startswith("# ") else line[1:])
        else:
            close()
            pending, pending_line = [line], number
            open_quote = line.count("'") % 2 == 1
    return found


def _line_pattern(text: str) -> str:
    return ".*?".join(re.escape(part) for part in text.split(ELLIPSIS))


def matches(shown: tuple[str, ...], printed: str) -> bool:
    lines = [line.rstrip() for line in printed.rstrip("\n").splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    if len(lines) <= 1:
        joined = shown[0] + "".join(line.lstrip() for line in shown[1:]) if shown else ""
        return re.fullmatch(_line_pattern(joined), lines[0] if lines else "") is not None
    pattern = "\n".join(
        "(?:.*\n)*?.*" if line.strip() == ELLIPSIS else _line_pattern(line.rstrip()) for line in shown
    )
    return re.fullmatch(pattern, "\n".join(lines)) is not None


def script(found: list[Step], outputs: Path, address: str) -> str:
    """One bash script (variables carry from command to command), each command's output to
    files; the service at `address`, the CLI of this Python."""
    parts = ['hiring_news() { "$HIRING_NEWS_PYTHON" -m service.cli "$@"; }']
    for i, step in enumerate(found):
        command = step.command.replace(".venv/bin/hiring-news", "hiring_news").replace(
            "localhost:8000", address
        )
        parts.append(f"{{\n{command}\n}} > {outputs}/{i}.out 2> {outputs}/{i}.err")
    return "\n".join(parts) + "\n"


def run(found: list[Step], address: str, env: dict[str, str], workdir: Path) -> list[str]:
    """What each command printed: its standard output, else its standard error."""
    outputs = workdir / "outputs"
    outputs.mkdir(exist_ok=True)
    env = {**env, "HIRING_NEWS_PYTHON": sys.executable}
    subprocess.run(
        ["bash", "-c", script(found, outputs, address)], env=env, cwd=workdir, check=False, timeout=600
    )
    printed = []
    for i in range(len(found)):
        out = (outputs / f"{i}.out").read_text()
        printed.append(out if out.strip() else (outputs / f"{i}.err").read_text())
    return printed


if __name__ == "__main__":
    import os
    import tempfile

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    found = steps(text)
    with tempfile.TemporaryDirectory() as tmp:
        for step, printed in zip(found, run(found, sys.argv[1], dict(os.environ), Path(tmp)), strict=True):
            mark = "ok" if matches(step.shown, printed) else "DIFFERS"
            print(f"---- README line {step.line} [{mark}]\n{step.command}\n{printed}")
