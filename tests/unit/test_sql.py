"""The SQL loader refuses what it would otherwise drop silently."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from service import sql


def package_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, str]) -> None:
    """The loader, pointed at a package of its own holding these files."""
    name = f"fake_sql_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    (root / "migrations").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    for path, text in files.items():
        (root / path).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sql, "__package__", name)


def test_a_block_name_given_twice_in_one_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package_with(monkeypatch, tmp_path, {"a.sql": "-- one --\nSELECT 1\n\n-- one --\nSELECT 2\n"})
    with pytest.raises(ValueError, match="'one' is defined twice"):
        sql.load("a.sql")


def test_a_block_name_given_in_two_files_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package_with(monkeypatch, tmp_path, {"a.sql": "-- one --\nSELECT 1\n", "b.sql": "-- one --\nSELECT 2\n"})
    with pytest.raises(ValueError, match="also defined in another file"):
        sql.load_all(("a.sql", "b.sql"))


@pytest.mark.parametrize("name", ["0007-dashes.sql", "7_short.sql", "0007_Upper.sql"])
def test_a_misnamed_migration_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    package_with(monkeypatch, tmp_path, {f"migrations/{name}": "SELECT 1;"})
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        sql.migrations()


def test_two_migrations_of_one_number_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package_with(
        monkeypatch, tmp_path, {"migrations/0001_a.sql": "SELECT 1;", "migrations/0001_b.sql": "SELECT 2;"}
    )
    with pytest.raises(ValueError, match="share a number"):
        sql.migrations()


def test_the_shipped_files_load() -> None:
    assert "append_group" in sql.QUERIES and sql.migrations()[0][0] == 1


def test_a_migration_is_found_by_its_name() -> None:
    assert "CREATE FUNCTION append_group(" in sql.migration("append_group")
    with pytest.raises(KeyError, match="no_such_migration"):
        sql.migration("no_such_migration")
