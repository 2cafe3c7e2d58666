"""A client generated from the served /v1/openapi.json works: every read, with its defaults.

openapi-python-client (the test extras) generates a Python client from the document that
gunicorn serves, offline, in a temporary directory; each GET operation is then called
through it against the live API as a consumer, a worker and the operator, every optional
parameter left at the default the document gives. None may answer 422 (a documented
default the API refuses, as the feed's ``after`` once was) or a 5xx, and each 2xx body must
parse into the generated models.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from flask import Flask

from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.env import ADMIN_TOKEN
from tests.harness.polling import wait_for

PACKAGE = "gigco_generated_client"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def generated(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the live server's document, imported."""
    root = tmp_path_factory.mktemp("client")
    spec = root / "openapi.json"
    spec.write_bytes(httpx.get(f"{base_url}/v1/openapi.json").raise_for_status().content)
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"), "generate", "--path", str(spec),
            "--meta", "none", "--output-path", str(root / PACKAGE),
        ],
        cwd=root,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _reads(package: ModuleType) -> dict[str, ModuleType]:
    """Every GET operation's module in the generated client, by its name."""
    api = importlib.import_module(f"{package.__name__}.api")
    found = {}
    for tag in pkgutil.iter_modules(api.__path__):
        group = importlib.import_module(f"{api.__name__}.{tag.name}")
        for op in pkgutil.iter_modules(group.__path__):
            if op.name.startswith("get_"):
                found[op.name] = importlib.import_module(f"{group.__name__}.{op.name}")
    return found


def _world(base_url: str) -> dict[str, Any]:
    """A consumer with a job, a worker and a webhook endpoint: ids for the path parameters."""
    with httpx.Client(base_url=base_url) as http:
        consumer = http.post("/v1/consumers", json=consumer_body()).raise_for_status().json()
        worker = http.post("/v1/workers", json=worker_body()).raise_for_status().json()
        headers = {"Authorization": f"Bearer {consumer['token']}"}
        job = http.post("/v1/jobs", json=job_body(), headers=headers).raise_for_status().json()
        endpoint = http.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=headers
        )
        wait_for(lambda: http.get("/healthz").status_code == 200, timeout=30, what="/healthz 200")
    return {
        "tokens": {"consumer": consumer["token"], "worker": worker["token"]},
        "ids": {
            "job_id": job["id"],
            "worker_id": worker["id"],
            "endpoint_id": endpoint.raise_for_status().json()["id"],
        },
    }


def test_every_read_of_a_generated_client_works_with_its_defaults(
    generated: ModuleType, base_url: str, committed: None
) -> None:
    world = _world(base_url)
    reads = _reads(generated)
    assert {"get_v1_notifications_feed", "get_v1_jobs", "get_v1_jobs_job_id"} <= set(reads)
    client_module = importlib.import_module(f"{generated.__name__}.client")
    answers: dict[str, dict[str, int]] = {}
    for who, token in {**world["tokens"], "operator": ADMIN_TOKEN}.items():
        client = client_module.AuthenticatedClient(base_url=base_url, token=token, timeout=30)
        with client:
            for name, module in sorted(reads.items()):
                call = module.sync_detailed
                required = {
                    param: world["ids"].get(param, 1)
                    for param, spec in inspect.signature(call).parameters.items()
                    if param != "client" and spec.default is inspect.Parameter.empty
                }
                response = call(client=client, **required)  # every optional one: its default
                answers.setdefault(name, {})[who] = response.status_code
                assert response.status_code != 422, (who, name, response.content)
                assert response.status_code < 500, (who, name, response.content)
                if response.status_code < 300:
                    assert response.parsed is not None, (who, name, response.content)
    assert answers["get_v1_notifications_feed"] == {"consumer": 200, "operator": 403} or (
        answers["get_v1_notifications_feed"]["consumer"] == 200
    ), answers
    assert answers["get_v1_notifications_feed"]["consumer"] == 200
    assert answers["get_v1_opportunities"]["worker"] == 200
    assert answers["get_v1_jobs_job_id"] == {"consumer": 200, "worker": 404, "operator": 200}


def test_every_parameter_in_the_document_has_a_type(app: Flask) -> None:
    spec = app.test_client().get("/v1/openapi.json").json
    untyped = []
    for path, item in spec["paths"].items():
        operations = {m: op for m, op in item.items() if isinstance(op, dict)}
        shared = item.get("parameters", [])
        for method, operation in operations.items():
            for parameter in [*shared, *operation.get("parameters", [])]:
                schema = parameter.get("schema", {})
                if "type" not in schema and "$ref" not in schema:
                    untyped.append(f"{method.upper()} {path} {parameter['name']}: {schema}")
    assert untyped == []
