"""Health, the self-documenting API, and the categories catalogue."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

import gigco
from gigco import health
from gigco.config import Settings
from gigco.tasks import configure as configure_celery
from gigco.web import create_app
from tests.api.helpers import assert_error
from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import Api
from tests.harness.polling import wait_for

DEAD_BROKER = "redis://127.0.0.1:1/0"
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HEAD = health._script().get_current_head()
PARTS = ("database", "migrations", "broker", "workers", "beat")

# Every path of the HTTP contract (api.md), in OpenAPI's spelling.
CONTRACT_PATHS = {
    "/livez": {"get"},
    "/readyz": {"get"},
    "/v1/consumers": {"post"},
    "/v1/workers": {"post"},
    "/v1/me": {"get"},
    "/v1/workers/me": {"patch"},
    "/v1/workers/{worker_id}": {"get"},
    "/v1/categories": {"get"},
    "/v1/jobs": {"get", "post"},
    "/v1/jobs/{job_id}": {"get"},
    "/v1/jobs/{job_id}/events": {"get"},
    "/v1/jobs/{job_id}/offer/accept": {"post"},
    "/v1/jobs/{job_id}/offer/reject": {"post"},
    "/v1/jobs/{job_id}/cancel": {"post"},
    "/v1/opportunities": {"get"},
    "/v1/jobs/{job_id}/opportunity/accept": {"post"},
    "/v1/jobs/{job_id}/opportunity/decline": {"post"},
    "/v1/jobs/{job_id}/start": {"post"},
    "/v1/jobs/{job_id}/complete": {"post"},
    "/v1/jobs/{job_id}/reviews": {"get", "post"},
    "/v1/jobs/{job_id}/payment": {"get"},
    "/v1/jobs/{job_id}/payment/retry": {"post"},
    "/v1/notifications": {"get"},
    "/healthz": {"get"},
}
# api.md "Added this round": with GIGCO_TEST_CLOCKS=1 only.
TEST_CLOCK_PATHS = {
    "/v1/test_clocks": {"get", "post"},
    "/v1/test_clocks/{clock_id}": {"get", "delete"},
    "/v1/test_clocks/{clock_id}/advance": {"post"},
}
PUBLIC = {("/v1/consumers", "post"), ("/v1/workers", "post"), ("/v1/categories", "get")}
PUBLIC |= {("/healthz", "get"), ("/livez", "get"), ("/readyz", "get")}
SEEDED_RATES = {
    "cleaning": 3500,
    "electrical": 9500,
    "gardening": 4000,
    "handyman": 5500,
    "moving": 6000,
    "plumbing": 9000,
}


def test_health_is_ok_when_database_and_broker_answer(api: Api) -> None:
    # The live worker's beat records its first sweep one interval (a second) after its start.
    r = wait_for(
        lambda: (
            (r := api.client.get("/healthz", headers=api.admin)).status_code == 200
            and r.json["beat"]["last_sweep_at"]
            and r
        ),
        timeout=10,
        what="/healthz to be 200 with a sweep recorded",
    )
    body = r.json
    assert (body["status"], body["down"]) == ("ok", [])
    assert set(body) == {"status", "down", "checked_at", "version", *PARTS}
    assert body["version"] == gigco.__version__  # the operator reads which release answers
    assert {part: body[part]["status"] for part in body if part in PARTS} == dict.fromkeys(
        PARTS, "ok"
    )
    assert body["broker"]["transport"] == "redis"
    assert body["migrations"]["pending"] == [] and body["migrations"]["current"]
    assert body["workers"]["last_task_finished_at"] is not None
    assert body["beat"]["last_sweep_at"] is not None


@pytest.fixture
def dead_broker_app(app: Flask, settings: Settings) -> Iterator[Flask]:
    """An app whose broker does not answer; the shared Celery app is restored afterwards."""
    try:
        yield create_app(settings.replace(broker_url=DEAD_BROKER))
    finally:
        configure_celery(settings)


def test_health_is_503_in_the_error_shape_when_the_broker_is_unreachable(
    app: Flask, dead_broker_app: Flask
) -> None:
    r = dead_broker_app.test_client().get("/healthz", headers=OPERATOR)
    error = assert_error(r, 503)
    assert error["down"] == ["broker"]
    assert (error["database"]["status"], error["broker"]["status"]) == ("ok", "down")
    assert "unreachable" in error["broker"]["reason"]
    assert "broker" in error["message"]
    ready = assert_error(dead_broker_app.test_client().get("/readyz"), 503)
    assert ready["down"] == ["broker"] and "workers" not in ready
    assert dead_broker_app.test_client().get("/livez").json == {"status": "ok"}
    # Each app reports on its own broker, whatever else lives in the process.
    assert app.test_client().get("/healthz").status_code == 200


def test_anyone_reads_which_parts_are_down_and_only_the_operator_reads_why(
    app: Flask, dead_broker_app: Flask
) -> None:
    client = dead_broker_app.test_client()
    operator = assert_error(client.get("/healthz", headers=OPERATOR), 503)
    assert "unreachable" in operator["broker"]["reason"]
    assert operator["migrations"]["head"] == [HEAD]
    for headers in ({}, {"Authorization": "Bearer a-token-nobody-has"}):
        for path in ("/healthz", "/readyz"):
            r = client.get(path, headers=headers)
            body = assert_error(r, 503)
            assert body["down"] == ["broker"]
            assert body["message"] == "Down: broker."
            parts = {k: v for k, v in body.items() if k in PARTS}
            assert parts and all(set(part) == {"status"} for part in parts.values()), body
            assert parts["broker"] == {"status": "down"}
            # No error text, address, port or revision id in the whole answer.
            for secret in ("unreachable", "127.0.0.1", "Connection", HEAD, "redis"):
                assert secret not in r.get_data(as_text=True), (path, secret)
    migrated = app.test_client().get("/healthz")
    assert HEAD not in migrated.get_data(as_text=True)
    assert migrated.json["migrations"] == {"status": "ok"}


def _spec(api: Api) -> dict[str, Any]:
    r = api.client.get("/v1/openapi.json")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    return r.json


def test_the_openapi_document_states_the_quarter_hour_step(api: Api) -> None:
    spec = api.client.get("/v1/openapi.json").json
    hours = spec["components"]["schemas"]["JobCreate"]["properties"]["estimated_hours"]
    assert (hours["minimum"], hours["maximum"], hours["multipleOf"]) == (0.5, 12.0, 0.25)


def test_the_openapi_document_lists_every_path_of_the_contract(api: Api) -> None:
    spec = _spec(api)
    assert spec["openapi"].startswith("3.")
    assert (spec["info"]["title"], spec["info"]["version"]) == ("GigCo", "v1")
    documented = _documented(spec)
    missing = {p: m - documented.get(p, set()) for p, m in CONTRACT_PATHS.items()}
    assert {p: m for p, m in missing.items() if m} == {}


def _undocumented(app: Flask, spec: dict[str, Any]) -> set[str]:
    """The app's JSON routes (from its URL map) that the document does not list."""
    routes = {
        re.sub(r"<(?:int:|id:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1/") and rule.rule != "/v1/openapi.json"
    }
    assert len(routes) >= len([p for p in CONTRACT_PATHS if p.startswith("/v1/")])
    return routes - set(spec["paths"])


def _documented(spec: dict[str, Any]) -> dict[str, set[str]]:
    return {
        path: {m for m in ops if m in {"get", "post", "patch", "put", "delete"}}
        for path, ops in spec["paths"].items()
    }


def test_the_openapi_document_covers_every_json_route_of_the_app(api: Api) -> None:
    spec = _spec(api)
    assert _undocumented(api.client.application, spec) == set()
    # Test clocks are off here: their paths answer 404 and are not in the document.
    assert not set(TEST_CLOCK_PATHS) & set(spec["paths"])


def test_with_test_clocks_on_the_openapi_document_lists_their_paths(clock_app: Flask) -> None:
    r = clock_app.test_client().get("/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json
    assert _undocumented(clock_app, spec) == set()
    documented = _documented(spec)
    missing = {p: m - documented.get(p, set()) for p, m in TEST_CLOCK_PATHS.items()}
    assert {p: m for p, m in missing.items() if m} == {}
    for path, methods in TEST_CLOCK_PATHS.items():
        for method in methods:  # every one of them needs the caller's token
            assert {"bearerAuth": []} in spec["paths"][path][method]["security"], (path, method)
    job = spec["components"]["schemas"]["JobCreate"]["properties"]
    assert "test_clock" in job


def test_the_openapi_document_declares_bearer_auth_on_protected_operations(api: Api) -> None:
    spec = _spec(api)
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    unsecured = [
        (path, method)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "patch"}
        and (path, method) not in PUBLIC
        and {"bearerAuth": []} not in op.get("security", [])
    ]
    assert unsecured == []
    job = spec["components"]["schemas"]["Job"]["properties"]
    for field in ("id", "status", "price_cents", "scheduled_start", "offer_expires_at"):
        assert field in job


def test_swagger_ui_is_served_at_docs(api: Api) -> None:
    r = api.client.get("/docs")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "swagger-ui" in page.lower()
    assert "/v1/openapi.json" in page
    # Its scripts come from this server (swagger-ui-bundle), not from a CDN.
    scripts = re.findall(r'src="([^"]+)"', page)
    assert scripts and all(src.startswith("/docs/assets/") for src in scripts)
    for src in scripts:
        with api.client.get(src) as asset:
            assert asset.status_code == 200 and len(asset.data) > 1000


def test_categories_are_the_six_seeded_with_their_hourly_rates(api: Api) -> None:
    r = api.client.get("/v1/categories")
    assert r.status_code == 200, r.json
    assert {c["name"]: c["hourly_rate_cents"] for c in r.json} == SEEDED_RATES
    assert [c["name"] for c in r.json] == sorted(SEEDED_RATES)
    assert all(isinstance(c["id"], int) for c in r.json)
