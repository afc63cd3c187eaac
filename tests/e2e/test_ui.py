"""The pages, against a real `hiring-news serve` holding the founding article.

Plain HTTP first (always run): every page answers, under the app's CSP with no inline
script or style, shows the `as_of` of the read it views, and an unknown id is a 404
page. Then Debian's chromium (tests/e2e/browser.py): no console errors and no request
anywhere but the app; the article's answers on the lab's page and on Ruoming Pang's;
the date and "as known at" controls change the roster shown, with and without
JavaScript; the feed follows the live stream; axe-core finds no serious or critical
violation. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from service.middleware import CONTENT_SECURITY_POLICY
from tests.conftest import ADMIN, with_database
from tests.e2e.browser import Console, chromium, screenshot, serious_violations
from tests.e2e.server import cli, environment, serving

MSL = "meta-superintelligence-labs"
JULY = ["alexandr-wang", "anton-bakhtin", "daniel-gross", "nat-friedman", "ruoming-pang", "yuanzhi-li"]
RECRUITS = ["anton-bakhtin", "daniel-gross", "nat-friedman", "yuanzhi-li"]


async def _execute(dsn: str, statement: str) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def _database(dsn: str, statement: str) -> None:
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _execute(dsn, statement)).result()


@pytest.fixture(scope="module")
def served(pg_dsn: str) -> Iterator[str]:
    """One server with the article for the module: its pages are only read (but for the feed)."""
    name = f"hn_ui_{uuid.uuid4().hex[:12]}"
    _database(pg_dsn, f"CREATE DATABASE {name}")
    try:
        env = environment(with_database(pg_dsn, name))
        imported = cli(["import", "--example", "article"], env)
        assert imported.returncode == 0, imported.stderr
        with serving(env) as (base, _):
            yield base
    finally:
        _database(pg_dsn, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


def pang_joined_msl(base: str) -> int:
    """The position of the event that put Ruoming Pang in the lab, from GET /events."""
    page = httpx.get(f"{base}/events", params={"type": "member.joined", "limit": 1000}).json()
    return next(
        int(e["position"])
        for e in page["events"]
        if e["data"]["person_id"] == "ruoming-pang" and e["data"]["org_id"] == MSL
    )


# ---- plain HTTP ---------------------------------------------------------------------------

PAGES = [
    "/ui",
    "/ui?q=pang",
    f"/ui/orgs/{MSL}?on=2025-07-10",
    f"/ui/orgs/{MSL}?on=2025-06-01&as_of=20&include=suborgs&min_status=rumor",
    "/ui/orgs/apple?on=2025-06-01&include=suborgs",
    "/ui/orgs/meta/tree?on=2025-07-10",
    "/ui/people/ruoming-pang?on=2025-07-10",
    "/ui/flows?from=apple&to=meta",
    "/ui/flows",
    "/ui/feed",
    "/ui/feed?type=member.joined",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_under_the_csp_with_nothing_inline(served: str, path: str) -> None:
    answer = httpx.get(served + path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = answer.text
    # Scripts only by src, from the app; no style element or attribute; nothing from elsewhere.
    assert re.findall(r"<script(?![^>]*\bsrc=\"/ui/static/)", html) == []
    assert "<style" not in html and " style=" not in html
    assert re.findall(r"(?:src|href)=\"(?:https?:)?//", html) == []


def test_static_files_come_from_the_app(served: str) -> None:
    for name, media in (
        ("site.css", "text/css"),
        ("site.js", "javascript"),
        ("favicon.svg", "image/svg+xml"),
    ):
        answer = httpx.get(f"{served}/ui/static/{name}")
        assert answer.status_code == 200
        assert media in answer.headers["content-type"]
    assert httpx.get(f"{served}/").headers["location"] == "/ui"


def test_the_org_page_is_a_view_of_the_roster(served: str) -> None:
    """The same members, in the same order, and the same as_of as GET /orgs/{id}/roster."""
    for params in ({"on": "2025-07-10"}, {"on": "2025-06-01"}, {"on": "2025-07-10", "as_of": "20"}):
        roster = httpx.get(f"{served}/orgs/{MSL}/roster", params=params).json()
        html = httpx.get(f"{served}/ui/orgs/{MSL}", params=params).text
        assert f"position <strong>{roster['as_of']}</strong>" in html
        for key, marker in (("members", "data-members"), ("possible", "data-possible")):
            shown = _people_in(html, marker)
            assert shown == [e["person_id"] for e in roster[key]], (params, key)


def _people_in(html: str, marker: str) -> list[str]:
    """The people a roster list of the page links to, in order."""
    start = html.find(marker)
    if start < 0:
        return []
    ends = [i for i in (html.find('id="possible-h"', start), html.find("</section>", start)) if i >= 0]
    section = html[start : min(ends)]
    return re.findall(r'<div class="who">\s*<a href="/ui/people/([a-z0-9-]+)', section)


def test_the_history_endpoint_gives_everyone_ever_in_the_org(served: str) -> None:
    history = httpx.get(f"{served}/orgs/apple-foundation-models/history").json()
    assert [p["person_id"] for p in history["people"]] == ["ruoming-pang", "zhifeng-chen"]
    pang = history["people"][0]["stints"][0]
    assert pang["role"] == "lead" and pang["end"]["value"] == "2025-07"
    assert "sources" not in pang
    assert history["versions"][0]["name"] == "Apple Foundation Models"
    assert httpx.get(f"{served}/orgs/nowhere/history").status_code == 404


def test_an_unknown_id_is_a_404_page_and_a_bad_date_a_400_page(served: str) -> None:
    for path, status in (
        ("/ui/orgs/nowhere", 404),
        ("/ui/people/nobody", 404),
        (f"/ui/orgs/{MSL}?on=2025-02-30", 400),
        (f"/ui/orgs/{MSL}?as_of=3&known_at=2025-07-08T00:00:00Z", 400),
    ):
        answer = httpx.get(served + path)
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Back to orgs and people" in answer.text


# ---- in a browser -------------------------------------------------------------------------


def open_page(browser: Browser, base: str, path: str, **context: Any) -> tuple[Page, Console]:
    page = browser.new_context(viewport={"width": 1200, "height": 900}, **context).new_page()
    console = Console(page, base)
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    return page, console


def roster_shown(page: Page) -> tuple[list[str], list[str]]:
    def ids(selector: str) -> list[str]:
        links = page.locator(f"{selector} .entry .who > a").all()
        return [str(a.get_attribute("href")).split("?")[0].rsplit("/", 1)[-1] for a in links]

    return ids("[data-members]"), ids("[data-possible]")


def test_the_lab_page_gives_the_articles_answers(browser: Browser, served: str) -> None:
    page, console = open_page(browser, served, f"/ui/orgs/{MSL}?on=2025-07-10")
    members, possible = roster_shown(page)
    assert members == JULY and possible == []
    wang = page.locator("[data-members] .entry").first
    expect(wang.locator(".badge.lead")).to_have_text("lead")
    # The picture: one row per person, hatched and solid spans, the chosen date.
    picture = page.locator("svg.gantt")
    expect(picture).to_have_attribute("role", "group")
    assert picture.locator("rect.sure").count() >= 6
    assert picture.locator("rect.possible").count() >= 4
    expect(picture.locator("g.on text")).to_have_text("2025-07-10")
    # Pang's source: the outlet and the sentence.
    pang = page.locator("[data-members] .entry", has_text="Ruoming Pang")
    pang.locator("summary").click()
    expect(pang.locator("details.sources")).to_contain_text("Le Monde Informatique")
    screenshot(page, "org-page-2025-07-10")
    assert console.errors == [] and console.elsewhere == []

    june, console = open_page(browser, served, f"/ui/orgs/{MSL}?on=2025-06-01")
    members, possible = roster_shown(june)
    assert members == [] and possible == RECRUITS
    expect(june.locator("[data-possible] .reason").first).to_contain_text("perhaps not yet on 2025-06-01")
    screenshot(june, "org-page-2025-06-01")
    assert console.errors == []


def test_the_date_control_changes_the_roster(browser: Browser, served: str) -> None:
    page, console = open_page(browser, served, f"/ui/orgs/{MSL}?on=2025-07-10")
    page.fill("#on", "2025-06-01")
    page.locator("#on").dispatch_event("change")
    expect(page.locator("[data-possible] .entry")).to_have_count(4)
    members, possible = roster_shown(page)
    assert members == [] and possible == RECRUITS
    assert "on=2025-06-01" in page.url
    assert console.errors == []


def test_the_known_at_control_replays_the_log(browser: Browser, served: str) -> None:
    before = pang_joined_msl(served) - 1
    page, console = open_page(browser, served, f"/ui/orgs/{MSL}?on=2025-07-10")
    slider = page.locator("#as_of")
    slider.evaluate(
        "(el, value) => { el.value = value; el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }",
        before,
    )
    expect(page.locator("#stood strong")).to_have_text(str(before))
    members, _ = roster_shown(page)
    assert "ruoming-pang" not in members
    assert "alexandr-wang" in members
    expect(page.locator("#as_of-out")).to_have_text(str(before))
    screenshot(page, f"org-page-as-of-{before}")
    assert console.errors == []


def test_the_controls_work_without_javascript(browser: Browser, served: str) -> None:
    before = pang_joined_msl(served) - 1
    page, console = open_page(browser, served, f"/ui/orgs/{MSL}?on=2025-07-10", java_script_enabled=False)
    assert "ruoming-pang" in roster_shown(page)[0]
    page.fill("#on", "2025-07-10")
    page.locator("#as_of").evaluate("(el, value) => { el.value = value; }", before)
    page.click("form.replay button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert f"as_of={before}" in page.url
    assert "ruoming-pang" not in roster_shown(page)[0]
    assert console.errors == []


def test_pangs_page_gives_his_career(browser: Browser, served: str) -> None:
    page, console = open_page(browser, served, "/ui/people/ruoming-pang?on=2025-07-10")
    stints = page.locator("ol.stints > li.entry")
    assert [s.get_attribute("data-org") for s in stints.all()] == [
        "google",
        "apple-foundation-models",
        MSL,
    ]
    expect(stints.nth(1).locator(".badge.lead")).to_have_text("lead")
    expect(stints.nth(1)).to_contain_text("left 2025-07 (2025-07-07 to 2025-07-08)")
    expect(page.locator("svg.career")).to_have_attribute("role", "group")
    assert page.locator("svg.career g.stint").count() == 3
    screenshot(page, "person-ruoming-pang")
    assert console.errors == [] and console.elsewhere == []


def test_the_feed_follows_the_live_stream(browser: Browser, served: str) -> None:
    page, console = open_page(browser, served, "/ui/feed")
    expect(page.locator("#live")).to_contain_text("Live")
    person = f"feed-{uuid.uuid4().hex[:8]}"
    posted = httpx.post(
        f"{served}/events",
        headers=ADMIN,
        json={"type": "person.added", "data": {"person_id": person, "name": "Feed Reader"}},
    )
    assert posted.status_code == 201, posted.text
    expect(page.locator("#feed li.fresh").first).to_contain_text(person)
    screenshot(page, "feed")
    assert console.errors == []


@pytest.mark.parametrize(
    "path",
    [
        "/ui",
        f"/ui/orgs/{MSL}?on=2025-07-10",
        f"/ui/orgs/{MSL}?on=2025-06-01",
        "/ui/orgs/meta/tree?on=2025-07-10",
        "/ui/people/ruoming-pang?on=2025-07-10",
        "/ui/flows?from=apple&to=meta",
        "/ui/feed",
    ],
)
def test_axe_finds_nothing_serious(browser: Browser, served: str, path: str) -> None:
    page, console = open_page(browser, served, path)
    assert serious_violations(page) == []
    assert console.errors == []
