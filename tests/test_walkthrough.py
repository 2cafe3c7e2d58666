"""The README's walkthrough (examples/walkthrough.sh), run against gunicorn and a live worker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "walkthrough.sh"
README = ROOT / "README.md"

pytestmark = pytest.mark.usefixtures("committed")


def test_walkthrough_takes_a_job_from_sign_up_to_closed(base_url: str, committed: None) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "GIGCO_URL": base_url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for status in ("offered", "scheduled", "review_pending", "closed"):
        assert any(line.startswith("job ") and line.endswith(f": {status}") for line in lines)
    assert "price (cents): 19800" in lines
    history = [line.split()[1] for line in lines if line[:1].isdigit()]
    assert history[0] == "created" and history[-1] == "closed"
    assert history.count("review_received") == 2


def test_readme_shows_the_walkthroughs_first_steps() -> None:
    readme = README.read_text()
    assert "examples/walkthrough.sh" in readme
    assert "TOKEN=$(" in readme
    script = SCRIPT.read_text()
    # Every command the README's "Try it" shows is one the script runs.
    assert 'TOKEN=$(echo "$CONSUMER" | json \'["token"]\')' in script
