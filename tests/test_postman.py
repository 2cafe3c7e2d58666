"""The Postman collection, run by newman against gunicorn and a live Celery worker with test
clocks on; and a check that it calls every route of the test clocks' API."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.harness.env import ADMIN_TOKEN
from tests.harness.private_stack import private_stack

ROOT = Path(__file__).resolve().parent.parent
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "gigco.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "gigco.postman_environment.json"

pytestmark = [
    pytest.mark.skipif(
        not NEWMAN.exists(),
        reason="newman is not installed: run `npm ci` in the repository root (see package.json)",
    ),
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """GigCo with test clocks on (the collection's folder 7 needs them in the API and the
    worker), on a database, broker, gunicorn and worker of its own: the run's live worker
    keeps them off, as production does."""
    with private_stack(tmp_path_factory.mktemp("postman"), {"GIGCO_TEST_CLOCKS": "1"}) as client:
        yield client.base_url


def _requests(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield from _requests(item["item"]) if "item" in item else [item["request"]]


def _route(path: str) -> str:
    """A path with each variable part (``{{jobId}}``, ``<id:clock_id>``) as ``*``."""
    return re.sub(r"\{\{\w+\}\}|<[^>]+>", "*", path.split("?")[0])


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
    base_url: str, tmp_path: Path
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
    assert names[0] == "Health" and names[-1] == "The deleted clock is gone"
    assert "Wait until the job is closed" in names
    assert "Wait until the clock is ready" in names
    assert "The clock's job expired at its offer's deadline" in names


def test_the_collection_calls_every_route_of_the_test_clocks_api(clock_app: Flask) -> None:
    # Read from the app's URL map, not a hand-kept list: a route added to the test clocks'
    # blueprint and not to the collection fails here.
    routes = {
        (method, _route(rule.rule))
        for rule in clock_app.url_map.iter_rules()
        if rule.endpoint.startswith("test_clocks.")
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert routes >= {
        ("GET", "/v1/test_clocks"),
        ("POST", "/v1/test_clocks"),
        ("GET", "/v1/test_clocks/*"),
        ("DELETE", "/v1/test_clocks/*"),
        ("POST", "/v1/test_clocks/*/advance"),
    }
    collection = json.loads(COLLECTION.read_text())
    called = {
        (request["method"], _route("/" + "/".join(request["url"]["path"])))
        for request in _requests(collection["item"])
    }
    assert routes - called == set()
