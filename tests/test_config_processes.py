"""A process started with a bad GIGCO_* value exits with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GIGCO = Path(sys.executable).with_name("gigco")


def _run(
    args: list[str], bad: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIGCO_")}
    return subprocess.run(
        args,
        env={**env, "GIGCO_DATA_DIR": str(cwd / "data"), **bad},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


CELERY = [sys.executable, "-m", "celery", "-A", "gigco.tasks"]
COMMANDS = [
    ("celery-worker", [*CELERY, "worker"], "GIGCO_OFFER_TTL_SECONDS", "soon"),
    ("celery-beat", [*CELERY, "beat"], "GIGCO_SWEEP_INTERVAL_SECONDS", "0"),
    ("gigco-dev", [str(GIGCO), "dev", "--port", "1"], "GIGCO_MATCH_MAX_ROUNDS", "2.5"),
    ("gigco-db-upgrade", [str(GIGCO), "db", "upgrade"], "GIGCO_BROKER_URL", "localhost:6379"),
]


@pytest.mark.parametrize(
    ("command", "name", "value"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS]
)
def test_a_process_with_a_bad_value_exits_with_one_line(
    tmp_path: Path, command: list[str], name: str, value: str
) -> None:
    result = _run(command, {name: value}, tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()  # stopped before touching anything


def test_gunicorn_with_a_bad_value_stops_instead_of_rebooting_workers(tmp_path: Path) -> None:
    # One worker: with two failing at once, gunicorn's own arbiter can raise HaltServer again
    # while halting for the first and print its traceback (a race in gunicorn, seen in CI).
    gunicorn = [str(GIGCO.with_name("gunicorn")), "--bind", "127.0.0.1:0", "--workers", "1"]
    result = _run(
        [*gunicorn, "gigco.web:create_app()"], {"GIGCO_OFFER_TTL_SECONDS": "soon"}, tmp_path, 30
    )
    assert result.returncode != 0
    said = [line for line in result.stderr.splitlines() if "GIGCO_OFFER_TTL_SECONDS" in line]
    assert said and set(said) == {
        "gigco: GIGCO_OFFER_TTL_SECONDS must be a number of seconds, got 'soon'"
    }
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("GIGCO_RATE_LIMIT_SIGNUPS", "lots"), ("GIGCO_RATE_LIMIT_REQUESTS", "0/minute")],
)
def test_gunicorn_with_a_bad_rate_limit_stops_saying_which(
    tmp_path: Path, name: str, value: str
) -> None:
    gunicorn = [str(GIGCO.with_name("gunicorn")), "--bind", "127.0.0.1:0", "--workers", "1"]
    result = _run([*gunicorn, "gigco.web:create_app()"], {name: value}, tmp_path, 30)
    assert result.returncode != 0
    said = [line for line in result.stderr.splitlines() if name in line]
    assert said and set(said) == {
        f"gigco: {name} must be a rate such as 20/minute (count/second, minute, hour or day; "
        f"several joined by ';'), or off; got {value!r}"
    }
    assert "Traceback" not in result.stderr
