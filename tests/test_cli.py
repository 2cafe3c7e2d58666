"""The ``gigco`` command's messages: one line for a missing database, a clean ``dev --reset``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gigco.cli import _reset
from gigco.config import load_settings


def test_db_upgrade_against_a_missing_database_says_so_in_one_line(database_url: str) -> None:
    missing = database_url.rsplit("/", 1)[0] + "/gigco_no_such_database"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gigco"), "db", "upgrade"],
        env={**os.environ, "GIGCO_DATABASE_URL": missing},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert 'database "gigco_no_such_database" does not exist' in lines[0]
    assert "createdb gigco_no_such_database" in lines[0]


def test_dev_reset_deletes_only_the_embedded_files(tmp_path: Path) -> None:
    names = ("gigco.db", "gigco.db-wal", "broker.db", "celerybeat-schedule", "operator-token")
    for name in (*names, "dev.lock", "notes.txt"):
        (tmp_path / name).write_text("x")
    _reset(load_settings({"GIGCO_DATA_DIR": str(tmp_path)}))
    # The lock stays: the instance resetting holds it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.lock", "notes.txt"]


def test_dev_reset_refuses_a_database_it_does_not_own(tmp_path: Path) -> None:
    settings = load_settings(
        {"GIGCO_DATA_DIR": str(tmp_path), "GIGCO_DATABASE_URL": "postgresql://x@127.0.0.1/y"}
    )
    with pytest.raises(click.ClickException, match="only deletes the embedded SQLite files"):
        _reset(settings)


def test_gigco_version_names_the_release_in_pyproject() -> None:
    import tomllib

    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    release = tomllib.loads(pyproject.read_text())["project"]["version"]
    gigco = Path(sys.executable).parent / "gigco"
    shown = subprocess.run([gigco, "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == f"gigco, version {release}"
