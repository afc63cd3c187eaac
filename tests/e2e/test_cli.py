"""The CLI for people (issue 12): its help, its errors in one line, its quiet log, the reading
commands and `push`, against the database and against a running service."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from service import events as ev
from service.importing import decode_line
from tests.conftest import BOOTSTRAP_KEY
from tests.e2e.server import cli, environment, serving

MSL = "meta-superintelligence-labs"


def quiet_env(database_url: str | None, data_dir: Path | None = None) -> dict[str, str]:
    """The environment of a newcomer: no log level set."""
    env = environment(database_url, data_dir)
    del env["HIRING_NEWS_LOG_LEVEL"]
    return env


def log_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("{")]


# ---- help and version ----------------------------------------------------------------------------


def test_the_bare_command_prints_its_help() -> None:
    result = cli([], environment(None))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: hiring-news")
    for command in ("serve", "keys", "import", "push", "roster", "timeline", "tree", "flows", "events"):
        assert f"    {command} " in result.stdout, command


def test_version() -> None:
    result = cli(["--version"], environment(None))
    assert result.returncode == 0 and result.stdout.strip() == "hiring-news 0.1.0"


def test_serve_help_shows_its_defaults_and_the_environment() -> None:
    text = cli(["serve", "--help"], environment(None)).stdout
    assert "(default: 127.0.0.1)" in text and "(default: 8000)" in text
    for variable in (
        "DATABASE_URL",
        "HIRING_NEWS_DATA_DIR",
        "HIRING_NEWS_BOOTSTRAP_KEY",
        "HIRING_NEWS_READ_WAIT",
    ):
        assert variable in text, variable
    assert "(default: .data)" in text


def test_keys_create_help_says_the_scope_defaults_to_write() -> None:
    text = " ".join(cli(["keys", "create", "--help"], environment(None)).stdout.split())
    assert "(default: write)" in text


def test_keys_list_has_a_header_row(fresh_database: str) -> None:
    env = environment(fresh_database)
    assert cli(["keys", "create", "scraper"], env).returncode == 0
    lines = cli(["keys", "list"], env).stdout.splitlines()
    assert lines[0] == "NAME\tSCOPE\tCREATED\tSTATE"
    assert lines[1].startswith("scraper\twrite\t")


# ---- errors in one line --------------------------------------------------------------------------


def test_serve_with_an_unreachable_database_says_so_in_one_line() -> None:
    env = {**quiet_env("postgresql://postgres@127.0.0.1:1/none"), "HIRING_NEWS_LOG_LEVEL": "info"}
    served = cli(["serve", "--port", "0"], env)
    assert served.returncode == 2
    listed = cli(["keys", "list"], env)
    assert listed.returncode == 2
    [line] = [line for line in served.stderr.splitlines() if not line.startswith("{")]
    assert line == listed.stderr.strip()
    assert "cannot reach the database" in line and "DATABASE_URL" in line
    assert "Traceback" not in served.stderr and "ready" not in served.stderr


def test_serve_on_a_port_in_use_says_so_in_one_line(fresh_database: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**quiet_env(fresh_database), "HIRING_NEWS_LOG_LEVEL": "info"}
        served = cli(["serve", "--port", str(port)], env)
    assert served.returncode == 2
    assert served.stderr.splitlines() == [
        f"hiring-news: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another serve? pick another --port)"
    ]


# ---- the log around human output -----------------------------------------------------------------


def test_commands_for_people_print_no_log_lines_around_their_output(tmp_path: Path) -> None:
    env = quiet_env(None, tmp_path / "data")
    created = cli(["keys", "create", "scraper"], env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("hn_")
    assert created.stderr.splitlines() == ["created key 'scraper' (write); it is shown only this once"]
    imported = cli(["import", "--example", "article"], env)
    assert log_lines(imported.stderr) == []
    roster = cli(["roster", MSL, "--on", "2025-07-10"], env)
    assert roster.returncode == 0 and log_lines(roster.stderr) == [] and roster.stderr == ""


def test_a_command_beside_serve_says_it_left_the_embedded_server_running(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**environment(None, data), "HIRING_NEWS_LOG_LEVEL": "info"}
    log = tmp_path / "serve.log"
    with serving(env, log=log) as (base, _):
        listed = cli(["keys", "list"], env)
        assert listed.returncode == 0, listed.stderr
        said = [json.loads(line)["event"] for line in log_lines(listed.stderr)]
        assert "embedded postgresql stopped" not in said
        assert "embedded postgresql left running for the other processes using it" in said
        assert httpx.get(f"{base}/readyz").status_code == 200
    served = [json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert "embedded postgresql stopped" in served


# ---- reading -------------------------------------------------------------------------------------


QUESTIONS: list[tuple[list[str], str, dict[str, Any]]] = [
    (["roster", MSL, "--on", "2025-07-10"], f"/orgs/{MSL}/roster", {"on": "2025-07-10"}),
    (
        ["roster", "apple", "--on", "2025-06-01", "--suborgs"],
        "/orgs/apple/roster",
        {"on": "2025-06-01", "include": "suborgs"},
    ),
    (
        ["roster", MSL, "--on", "2025-07-10", "--as-of", "24"],
        f"/orgs/{MSL}/roster",
        {"on": "2025-07-10", "as_of": 24},
    ),
    (["timeline", "ruoming-pang"], "/people/ruoming-pang/timeline", {}),
    (["tree", "meta", "--on", "2025-07-10"], "/orgs/meta/tree", {"on": "2025-07-10"}),
    (["flows", "apple", "meta"], "/flows", {"from": "apple", "to": "meta"}),
    (["events", "--after", "20", "--limit", "5"], "/events", {"after": 20, "limit": 5}),
]


def test_the_reading_commands_print_tables_and_the_apis_json(fresh_database: str) -> None:
    env = quiet_env(fresh_database)
    assert cli(["import", "--example", "article"], env).returncode == 0
    with serving(environment(fresh_database)) as (base, _):
        for args, path, params in QUESTIONS:
            api = httpx.get(f"{base}{path}", params=params).content.decode()
            local = cli([*args, "--json"], env)
            remote = cli([*args, "--json", "--url", base], env)
            assert local.returncode == 0 and remote.returncode == 0, (args, local.stderr, remote.stderr)
            assert local.stdout == remote.stdout == api + "\n", args

    roster = cli(["roster", MSL, "--on", "2025-07-10"], env).stdout
    assert f"{MSL} on 10 July 2025, as of log position 28" in roster
    assert "Possible (the news is too vague to say): none" in roster
    [pang] = [line.split() for line in roster.splitlines() if line.startswith("ruoming-pang")]
    assert pang[:4] == ["ruoming-pang", "Ruoming", "Pang", "member"] and "7–8 July 2025" in " ".join(pang)
    june = cli(["roster", MSL, "--on", "2025-06-01"], env).stdout
    assert "Members: none" in june and "by 8 July 2025" in june
    timeline = cli(["timeline", "ruoming-pang"], env).stdout
    assert "by 31 December 2011" in timeline and "still there" in timeline
    assert "Meta Superintelligence Labs (meta-superintelligence-labs)" in cli(["tree", "meta"], env).stdout
    assert "1 move from apple to meta" in cli(["flows", "apple", "meta"], env).stdout
    assert "more: hiring-news events --after 5" in cli(["events", "--limit", "5"], env).stdout

    missing = cli(["roster", "nobody"], env)
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == "hiring-news: 404 Not Found: no org 'nobody' in the log as of position 28"
    )
    bad = cli(["roster", MSL, "--on", "2025-07"], env)
    assert bad.returncode == 1 and "'2025-07' is not a day: give YYYY-MM-DD" in bad.stderr


def test_a_reading_command_projects_what_no_projector_has(fresh_database: str) -> None:
    env = quiet_env(fresh_database)
    assert cli(["import", "--example", "article", "--no-wait"], env).returncode == 0
    roster = cli(["roster", MSL, "--on", "2025-07-10", "--json"], env)
    assert json.loads(roster.stdout)["as_of"] == 28


# ---- push ----------------------------------------------------------------------------------------


def article_lines() -> list[str]:
    from importlib import resources

    return resources.files("service.examples").joinpath("article.jsonl").read_text().splitlines()


def test_push_posts_a_file_resumes_and_names_a_bad_line(fresh_database: str, tmp_path: Path) -> None:
    env = quiet_env(fresh_database)
    # Without their own keys, as a scraper's file may be: they get the content keys.
    lines = [
        json.dumps({k: v for k, v in json.loads(x).items() if k != "idempotency_key"})
        for x in article_lines()
    ]
    file = tmp_path / "scraped.jsonl"
    file.write_text("\n".join(lines[:20]) + "\n")
    with serving(environment(fresh_database)) as (base, _):
        first = cli(["push", str(file), "--url", base, "--key", BOOTSTRAP_KEY], env)
        assert first.returncode == 0, first.stderr
        assert first.stderr.strip().endswith("20 events stored, 0 already in the log")
        # The whole file later: the first 20 are replays, by their content keys.
        file.write_text("\n".join(lines) + "\n")
        second = cli(["push", str(file), "--url", base], {**env, "HIRING_NEWS_KEY": BOOTSTRAP_KEY})
        assert second.stderr.strip().endswith("8 events stored, 20 already in the log"), second.stderr
        stored = httpx.get(f"{base}/events", params={"limit": 1000}).json()["events"]
        assert len(stored) == 28
        keyed = decode_line(1, lines[0].encode())
        assert isinstance(keyed, ev.OrgAdded) and stored[0]["idempotency_key"] == keyed.idempotency_key

        # A line invalid here, and one the server refuses (an unknown id, no name).
        invalid = tmp_path / "invalid.jsonl"
        invalid.write_text(
            '{"type": "person.added", "data": {"person_id": "a", "name": "A"}}\n\n{"type": "nope"}\n'
        )
        refused = cli(["push", str(invalid), "--url", base, "--key", BOOTSTRAP_KEY], env)
        assert refused.returncode == 1 and ", line 3: " in refused.stderr
        unknown = {"type": "member.left", "data": {"person_id": "nobody-known", "org_id": "meta"}}
        file.write_text("\n".join([*lines[:4], json.dumps(unknown)]) + "\n")
        server_side = cli(["push", str(file), "--url", base, "--key", BOOTSTRAP_KEY], env)
        assert server_side.returncode == 1 and ", line 5: " in server_side.stderr
        assert "unknown person id 'nobody-known'" in server_side.stderr
        assert len(httpx.get(f"{base}/events", params={"limit": 1000}).json()["events"]) == 28


def test_push_to_nothing_says_so(tmp_path: Path) -> None:
    file = tmp_path / "one.jsonl"
    file.write_text(article_lines()[0] + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**quiet_env(None, tmp_path), "HIRING_NEWS_KEY": "k"}
    result = cli(["push", str(file), "--url", f"http://127.0.0.1:{port}", "--retry-for", "1"], env)
    assert result.returncode == 2 and "gave up after" in result.stderr


@pytest.mark.parametrize("command", [["roster", "x"], ["events"]])
def test_reading_a_service_that_is_not_there_says_so(command: list[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli([*command, "--url", f"http://127.0.0.1:{port}", "--retry-for", "1"], environment(None))
    assert result.returncode == 2 and "gave up after" in result.stderr
