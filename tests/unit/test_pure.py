"""The pure core (events, dates, the fold, the answers) imports no I/O: neither asyncpg nor
litestar, checked in a fresh interpreter so that nothing the tests imported hides it."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = ["service.events", "service.dates", "service.fold", "service.answers", "service.wire"]


def test_the_pure_core_imports_neither_asyncpg_nor_litestar() -> None:
    probe = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in PURE)
        + "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'asyncpg', 'litestar', 'uvicorn', 'structlog', 'service'})))"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    )
    assert not [m for m in loaded if not m.startswith("service")], loaded
    # And of the service, only the pure modules themselves.
    assert {m for m in loaded if m.startswith("service")} <= {
        "service",
        *PURE,
        "service.fold.rows",
        "service.fold.claims",
        "service.fold.careers",
        "service.fold.orgs",
        "service.fold.state",
    }, loaded
