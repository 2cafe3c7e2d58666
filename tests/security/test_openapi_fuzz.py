"""Schemathesis against /v1/openapi.json through the WSGI app, as each role and as nobody.

Every answer must be a non-5xx that the document declares for the operation, with the
declared content type and body schema, and a 2xx on a secured operation must turn into a
401 without the token (schemathesis' ``ignored_auth``). The document's catch-all
``default`` response is removed before fuzzing, so an undeclared status code fails
instead of hiding behind it. Valid requests name a real job (the consumer's, with the
worker assigned) so the fuzzer gets past "not found" into the views; invalid ones are
generated whole, path ids included. Everything runs in the test's rolled-back transaction.

Schemathesis' own pytest loader (``schemathesis.pytest.from_fixture``) reads
``Function._nodeid``, which pytest 9.2 removed, so each operation's strategy is driven
here with Hypothesis directly, as schemathesis documents for non-Schemathesis tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase
from schemathesis import Case, GenerationMode
from schemathesis.checks import CHECKS
from sqlalchemy.orm import Session

from gigco.config import Settings
from gigco.models import JobStatus
from gigco.tasks import configure as configure_celery
from gigco.web import create_app
from gigco.web.schemas import COMMON_ERRORS
from tests.harness.bodies import job_body
from tests.security.worlds import build

# Each role as a party of the world: the consumer owns the job, the worker is assigned to it.
ROLES = {"none": "none", "consumer": "owner", "worker": "assigned", "operator": "operator"}
EXAMPLES_PER_OPERATION = 6
# A generated valid request may still meet the spec's 403, 404 or 409 (wrong party, another
# job, wrong state), so "valid data is accepted" is not a property of this API.
EXCLUDED_CHECKS = ("positive_data_acceptance",)


def _without_default_responses(spec: dict[str, Any]) -> dict[str, Any]:
    for operations in spec["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("default", None)
    return spec


def _fuzz(case: Case, seen: dict[str, set[int]]) -> None:
    excluded = [check for check in CHECKS.get_all() if check.__name__ in EXCLUDED_CHECKS]
    response = case.call_and_validate(excluded_checks=excluded)
    seen.setdefault(case.operation.label, set()).add(response.status_code)


def _config(headers: dict[str, str]) -> schemathesis.Config:
    """The role's token as the document's bearerAuth, so that schemathesis knows it is auth."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if not token:
        return schemathesis.Config()
    assert scheme == "Bearer"
    return schemathesis.Config.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": token}}}})


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("role", list(ROLES))
def test_every_answer_is_declared_and_none_is_a_5xx(
    isolated_app: Flask,
    session: Session,
    role: str,
    mode: GenerationMode,
    live_worker: object,  # a worker and beat at work: GET /healthz is a 200, not a 503
) -> None:
    world = build(session, JobStatus.SCHEDULED)
    headers = world.headers[ROLES[role]]
    ids = {
        "job_id": world.job_id,
        "worker_id": world.ids["assigned"],
        "endpoint_id": world.ids["endpoint"],
        "delivery_id": world.ids["delivery"],
    }
    spec = isolated_app.test_client().get("/v1/openapi.json").json
    schema = schemathesis.openapi.from_dict(
        _without_default_responses(spec), config=_config(headers)
    )
    schema.app = isolated_app  # in-process WSGI calls, probes included (as from_wsgi does)
    failures: dict[str, str] = {}
    seen: dict[str, set[int]] = {}
    fuzzed = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        fixed = {k: v for k, v in ids.items() if f"{{{k}}}" in operation.path}
        strategy = operation.as_strategy(
            generation_mode=mode,
            path_parameters=fixed if mode == GenerationMode.POSITIVE and fixed else None,
        )

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def fuzz(case: Case) -> None:
            _fuzz(case, seen)

        try:
            fuzz()
        except hypothesis.errors.Unsatisfiable:
            # Nothing to make invalid: no parameters and no body (GET /v1/me, ...).
            assert mode == GenerationMode.NEGATIVE, operation.label
        except Exception as error:  # every operation is fuzzed; all failures are reported
            failures[operation.label] = str(error)[:3000]
        fuzzed += 1
    assert fuzzed == len(spec["paths"]["/v1/jobs"]) + sum(
        len([m for m in ops if m in ("get", "post", "patch", "delete")])
        for path, ops in spec["paths"].items()
        if path != "/v1/jobs"
    )
    if mode == GenerationMode.POSITIVE:  # the role's token is really sent, and really checked
        assert seen["GET /v1/me"] == ({401} if role == "none" else {200})
    assert not failures, "\n\n".join(f"{label}: {error}" for label, error in failures.items())


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "patch", "put", "delete")
    ]


def test_every_operation_declares_the_errors_any_request_may_get(app: Flask) -> None:
    spec = app.test_client().get("/v1/openapi.json").json
    missing = {}
    for method, path, operation in _operations(spec):
        declared = {int(code) for code in operation["responses"] if code != "default"}
        expected = set(COMMON_ERRORS) | ({401} if operation.get("security") else set())
        if "{job_id}" in path or "{worker_id}" in path:
            expected.add(404)
        if expected - declared:
            missing[f"{method} {path}"] = sorted(expected - declared)
    assert missing == {}


# Bodies that pass validation, so that the database is the first thing each operation needs.
VALID_BODIES = {
    "POST /v1/consumers": {"name": "Ann", "email": "ann@example.com"},
    "POST /v1/workers": {
        "name": "Wim",
        "email": "wim@example.com",
        "skills": ["plumbing"],
        "location": {"lat": 52.5, "lng": 13.4},
        "service_radius_km": 10,
    },
    "PATCH /v1/workers/me": {"available": False},
    "POST /v1/jobs/{job_id}/reviews": {"rating": 5},
}


@pytest.fixture
def database_down(settings: Settings) -> Iterator[Flask]:
    """An app whose database refuses connections; the shared Celery app is restored afterwards."""
    try:
        yield create_app(settings.replace(database_url="postgresql://postgres@127.0.0.1:1/down"))
    finally:
        configure_celery(settings)


def test_with_the_database_down_every_operation_answers_a_declared_503(
    app: Flask, database_down: Flask
) -> None:
    client = database_down.test_client()
    spec = app.test_client().get("/v1/openapi.json").json
    answers = {}
    for method, path, operation in _operations(spec):
        label = f"{method} {path}"
        body = VALID_BODIES.get(label)
        if label == "POST /v1/jobs":
            body = job_body()
        r = client.open(
            path.format(job_id=1, worker_id=1, endpoint_id=1, delivery_id=1, version=1),
            method=method,
            json=body,
            headers={"Authorization": "Bearer gc_looked-up-in-the-database"},
        )
        answers[label] = r.status_code
        if label == "GET /livez":  # the process is up whatever the database (Kubernetes)
            continue
        assert "503" in operation["responses"], label
        if r.status_code == 503:
            assert r.json["code"] == 503 and r.json["message"]
    assert answers.pop("GET /livez") == 200
    assert {label: code for label, code in answers.items() if code != 503} == {}
