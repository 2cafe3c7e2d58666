"""``gigco demo`` as a user runs it: a subprocess against gunicorn and a live Celery worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.env import ADMIN_TOKEN
from tests.harness.servers import free_port, live_server

pytestmark = pytest.mark.usefixtures("committed")

GIGCO = str(Path(sys.executable).with_name("gigco"))
ROW = re.compile(r"^\s*(\d+)\s+(\d\d:\d\d:\d\d\.\d{3})\s+(\S+)\s*(.*?)\s{2,}(\S+)$")


def gigco(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run the installed ``gigco`` command."""
    return subprocess.run(
        [GIGCO, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def timeline(stdout: str) -> list[tuple[str, ...]]:
    """The rows of the printed timeline table: (seq, time, type, from → to, actor)."""
    after = stdout.split("Timeline of job #", 1)[1].splitlines()[3:]
    return [m.groups() for line in after if (m := ROW.match(line))]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed run printed on stderr, checked to carry no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_demo_drives_a_job_to_closed_and_prints_its_timeline(
    base_url: str, committed: None
) -> None:
    result = gigco("demo", "--url", base_url, "--admin-token", ADMIN_TOKEN, "--timeout", "20")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    job_id = re.search(r"Timeline of job #(\d+)", result.stdout)
    assert job_id, result.stdout
    assert f"job #{job_id[1]} is closed" in result.stdout
    rows = timeline(result.stdout)
    assert [int(seq) for seq, *_ in rows] == list(range(1, len(rows) + 1))
    assert [(kind, move) for _, _, kind, move, _ in rows if move] == [
        ("created", "→ draft"),
        ("priced", "draft → priced"),
        ("offered", "priced → offered"),
        ("accepted", "offered → accepted"),
        ("worker_assigned", "accepted → worker_assigned"),
        ("scheduled", "worker_assigned → scheduled"),
        ("in_progress", "scheduled → in_progress"),
        ("completed", "in_progress → completed"),
        ("paid", "completed → paid"),
        ("review_pending", "paid → review_pending"),
        ("closed", "review_pending → closed"),
    ]
    assert rows[-1][2:] == ("closed", "review_pending → closed", "system")
    assert [kind for _, _, kind, _, _ in rows].count("review_received") == 2


def test_demo_needs_no_admin_token(base_url: str, committed: None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GIGCO_ADMIN_TOKEN"}
    result = subprocess.run(
        [GIGCO, "demo", "--url", base_url, "--timeout", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    rows = timeline(result.stdout)
    assert rows[0][2] == "created" and rows[-1][2:4] == ("closed", "review_pending → closed")


def test_demo_against_a_closed_port_fails_with_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = gigco("demo", "--url", url, "--admin-token", ADMIN_TOKEN, timeout=30)

    assert one_line_error(result) == (
        f"Error: cannot reach GigCo at {url}: connection refused (is the server running?)"
    )
    assert result.stdout == ""


def test_demo_against_a_server_that_never_answers_times_out_with_one_line() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # never accepted: requests hang until the client gives up
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        result = gigco("demo", "--url", url, "--timeout", "1", "--admin-token", ADMIN_TOKEN)

    assert one_line_error(result) == f"Error: cannot reach GigCo at {url}: no answer in time"


def test_demo_whose_job_is_never_priced_times_out_naming_the_step(
    test_env: dict[str, str],
    live_worker: subprocess.Popen[bytes],
    committed: None,
    tmp_path: Path,
) -> None:
    # This server's broker is in-process memory nobody consumes: the job stays a draft
    # (the live worker's sweeper would re-kick it only after the 2 s grace).
    env = {**test_env, "GIGCO_BROKER_URL": "memory://"}
    with live_server(env, tmp_path / "gunicorn.log", workers=1) as url:
        result = gigco("demo", "--url", url, "--timeout", "1", "--admin-token", ADMIN_TOKEN)

    error = one_line_error(result)
    assert re.fullmatch(
        r"Error: timed out after 1s waiting for offered \(job \d+ is draft\); "
        r"is a Celery worker running\?",
        error,
    ), error
    assert "job #" in result.stdout and "posted" in result.stdout
