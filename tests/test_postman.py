"""The Postman collection, run by newman against gunicorn and a live Celery worker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness.env import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parent.parent
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "gigco.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "gigco.postman_environment.json"

pytestmark = [
    pytest.mark.usefixtures("committed"),
    pytest.mark.skipif(
        not NEWMAN.exists(),
        reason="newman is not installed: run `npm ci` in the repository root (see package.json)",
    ),
]


def newman(base_url: str, report: Path) -> subprocess.CompletedProcess[str]:
    """Run the collection with the repository's environment file against ``base_url``."""
    return subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(COLLECTION),
            "-e",
            str(ENVIRONMENT),
            "--env-var",
            f"baseUrl={base_url}",
            "--env-var",
            f"adminToken={ADMIN_TOKEN}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--color",
            "off",
            "--disable-unicode",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        cwd=ROOT,
    )


def test_postman_collection_walks_a_whole_lifecycle_with_every_assertion_passing(
    base_url: str, committed: None, tmp_path: Path
) -> None:
    report = tmp_path / "newman.json"

    result = newman(base_url, report)

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    run = json.loads(report.read_text())["run"]
    assert run["failures"] == []
    assertions = run["stats"]["assertions"]
    assert assertions["failed"] == 0
    assert assertions["total"] > 0
    names = [execution["item"]["name"] for execution in run["executions"]]
    assert names[0] == "Health" and names[-1] == "Retire the worker"
    assert "Wait until the job is closed" in names
