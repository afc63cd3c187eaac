"""The contract generator: `python -m service.openapi` writes openapi.yaml from the app.

It depends on the app (the document is made from its routes, `service.api.document`);
the app never depends on it. tests/e2e/test_openapi.py fails when the checked-in file
drifts from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from service.api.document import render
from service.app import create_app
from service.settings import Settings

OUTPUT: Final = Path("openapi.yaml")


def generated() -> str:
    """openapi.yaml as the app declares it now."""
    # No database is touched: building the app only wires it, and the document needs no I/O.
    return render(create_app(Settings(), "postgresql://unused"))


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else OUTPUT
    target.write_text(generated())
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
