"""Debian's chromium, driven by Playwright: never a browser build of Playwright's own.

Without /usr/bin/chromium a local run skips the browser tests, saying why; in CI
(CI=true) it fails, since `.ci/run` installs it. Screenshots go to tests/artifacts/
(git ignores it), or HIRING_NEWS_ARTIFACTS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("HIRING_NEWS_CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing that would reach the network on the browser's own account.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("HIRING_NEWS_ARTIFACTS", ROOT / "tests" / "artifacts"))


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """Every console error and page error of a page, and every request it made elsewhere."""

    def __init__(self, page: Page, base: str) -> None:
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: None if r.url.startswith(base) else self.elsewhere.append(r.url))


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page. axe-playwright-python
    bundles axe.min.js and injects it through the DevTools protocol: nothing is fetched."""
    results = Axe().run(page)
    found: list[dict[str, Any]] = results.response["violations"]
    return [v for v in found if v.get("impact") in ("serious", "critical")]
