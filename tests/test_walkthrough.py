"""The README's walkthrough (examples/walkthrough.sh), run against gunicorn and a live worker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import database
from tests.harness.env import live_env, server_url
from tests.harness.private_stack import private_stack
from tests.harness.servers import live_server

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "walkthrough.sh"
README = ROOT / "README.md"


def walkthrough(base_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the script as a user would, against ``base_url``."""
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "GIGCO_URL": base_url, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def readme_steps() -> str:
    """The README's first steps to type by hand (the bash block that starts with TOKEN=)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    (steps,) = [b for b in blocks if b.startswith("TOKEN=$(")]
    return steps


@pytest.mark.usefixtures("committed")
def test_walkthrough_runs_twice_on_one_database_then_the_readmes_steps_work(
    base_url: str,
) -> None:
    jobs = []
    for run in (1, 2):
        result = walkthrough(base_url)
        assert result.returncode == 0, f"run {run}: " + result.stdout[-3000:] + result.stderr
        lines = result.stdout.splitlines()
        for status in ("offered", "scheduled", "review_pending", "closed"):
            assert any(line.startswith("job ") and line.endswith(f": {status}") for line in lines)
        assert "price (cents): 19800" in lines
        history = [line.split()[1] for line in lines if line[:1].isdigit()]
        assert history[0] == "created" and history[-1] == "closed"
        assert history.count("review_received") == 2
        jobs.append(re.findall(r"^job (\d+): closed$", result.stdout, re.M))
    assert jobs[0] != jobs[1]

    # What a newcomer types next, in the README's order: the job they see is the one they posted.
    host = base_url.removeprefix("http://")
    typed = readme_steps().replace("localhost:5000", host)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", typed], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["title"] == "Fix the sink" and int(job["id"]) > int(jobs[1][0]), job
    assert job["status"] in {"draft", "priced", "offered"}, job


@pytest.fixture
def api_without_workers(tmp_path: Path) -> Iterator[str]:
    """gunicorn on a database of its own that no worker or beat ever reads."""
    name = f"gigco_test_idle_{uuid.uuid4().hex[:8]}"
    url = database.create_database(server_url(), name)
    try:
        env = live_env(url, "memory://")
        with live_server(env, tmp_path / "gunicorn.log") as base_url:
            yield base_url
    finally:
        database.drop_database(server_url(), name)


def test_walkthrough_waits_as_long_as_it_says_then_names_what_it_waited_for(
    api_without_workers: str,
) -> None:
    started = time.monotonic()
    result = walkthrough(api_without_workers, WAIT_SECONDS="2")
    took = time.monotonic() - started

    assert result.returncode == 1
    assert re.fullmatch(
        r"gave up after 2 s waiting for job \d+ to be offered \(it is draft\): "
        r"are a worker and beat running\?\n",
        result.stderr,
    ), result.stderr
    assert 2 < took < 6, took


def test_readme_shows_the_walkthroughs_first_steps() -> None:
    readme = README.read_text()
    assert "examples/walkthrough.sh" in readme
    assert "TOKEN=$(" in readme
    script = SCRIPT.read_text()
    # Every command the README's "Try it" shows is one the script runs.
    assert 'TOKEN=$(echo "$CONSUMER" | json \'["token"]\')' in script


def test_the_test_clock_walkthrough_skips_a_day_and_a_week_in_seconds(tmp_path: Path) -> None:
    """examples/test_clocks.sh against a GigCo with test clocks on and the real windows: a
    24-hour offer and a 7-day review window, both passed by advancing the clock."""
    real_windows = {
        "GIGCO_TEST_CLOCKS": "1",
        "GIGCO_OFFER_TTL_SECONDS": "86400",
        "GIGCO_OPPORTUNITY_TTL_SECONDS": "900",
        "GIGCO_REVIEW_WINDOW_SECONDS": "604800",
    }
    with private_stack(tmp_path, real_windows) as client:
        started = time.monotonic()
        result = subprocess.run(
            ["bash", str(ROOT / "examples" / "test_clocks.sh")],
            env={**os.environ, "GIGCO_URL": client.base_url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        took = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    lines = result.stdout.splitlines()
    expired = next(i for i, line in enumerate(lines) if line.endswith(": expired"))
    closed = next(i for i, line in enumerate(lines) if line.endswith(": closed"))
    assert expired < closed
    assert any(line.startswith("the clock stands at") for line in lines[:expired])
    history = [line.split()[2] for line in lines if line[:1].isdigit()]
    assert history[-2:] == ["review_pending", "closed"], history
    assert took < 60, took
