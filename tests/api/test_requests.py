"""Requests the API cannot take: bad JSON, huge bodies, wrong content types, no token."""

from __future__ import annotations

import json

import pytest

from tests.api.helpers import RowCounts, assert_error
from tests.harness.bodies import job_body
from tests.harness.http import Api

BODY_LIMIT = 64 * 1024


@pytest.mark.parametrize("path", ["/v1/consumers", "/v1/workers", "/v1/jobs"])
@pytest.mark.parametrize(
    "raw", ['{"name": ', "{'name': 'Ann'}", "\xff\xfe"], ids=["cut", "quotes", "bytes"]
)
def test_malformed_json_is_a_400(api: Api, row_counts: RowCounts, path: str, raw: str) -> None:
    consumer = api.consumer()
    before = row_counts()
    r = api.client.post(
        path,
        data=raw.encode("latin-1"),
        content_type="application/json",
        headers=consumer["headers"],
    )
    error = assert_error(r, 400)
    assert "JSON" in error["message"]
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/v1/consumers", "/v1/jobs"])
@pytest.mark.parametrize("body", ["[]", "null", '"text"', "42"])
def test_a_json_body_that_is_not_an_object_is_a_422(
    api: Api, row_counts: RowCounts, path: str, body: str
) -> None:
    consumer = api.consumer()
    before = row_counts()
    r = api.client.post(
        path, data=body, content_type="application/json", headers=consumer["headers"]
    )
    assert_error(r, 422, "_schema")
    assert row_counts() == before


def test_a_body_over_64_kib_is_a_413(api: Api, row_counts: RowCounts) -> None:
    consumer = api.consumer()
    before = row_counts()
    padding = "d" * (BODY_LIMIT + 1)
    r = api.client.post("/v1/jobs", json=job_body(description=padding), headers=consumer["headers"])
    error = assert_error(r, 413)
    assert "64 KiB" in error["message"]
    r = api.client.post("/v1/consumers", json={"name": padding, "email": "big@example.com"})
    assert_error(r, 413)
    assert row_counts() == before


def test_a_body_just_under_64_kib_is_read(api: Api) -> None:
    consumer = api.consumer()
    body = job_body(description="")
    body["description"] = "d" * (BODY_LIMIT - len(json.dumps(body)) - 10)
    r = api.client.post("/v1/jobs", json=body, headers=consumer["headers"])
    # Read and validated (the description limit is 5000), not refused for its size.
    assert_error(r, 422, "description")


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", '{"name": "Ann", "email": "ann@example.com"}'),
        ("application/x-www-form-urlencoded", "name=Ann&email=ann%40example.com"),
        ("application/xml", "<consumer><name>Ann</name></consumer>"),
    ],
    ids=["text", "form", "xml"],
)
def test_a_body_that_is_not_json_is_a_415(
    api: Api, row_counts: RowCounts, content_type: str, data: str
) -> None:
    before = row_counts()
    r = api.client.post("/v1/consumers", data=data, content_type=content_type)
    error = assert_error(r, 415)
    assert "application/json" in error["message"]
    assert row_counts() == before


def test_a_json_content_type_with_a_charset_is_accepted(api: Api) -> None:
    r = api.client.post(
        "/v1/consumers",
        data=json.dumps({"name": "Ann", "email": "ann@example.com"}),
        content_type="application/json; charset=utf-8",
    )
    assert r.status_code == 201, r.json


BAD_AUTHORIZATIONS = {
    "none": None,
    "no-token": "Bearer",
    "blank-token": "Bearer ",
    "unknown-token": "Bearer gc_not-a-real-token",
    "basic": "Basic YW5uOnNlY3JldA==",
    "no-scheme": "gc_not-a-real-token",
}
PROTECTED = [
    ("GET", "/v1/me", None),
    ("GET", "/v1/jobs", None),
    ("GET", "/v1/jobs/1", None),
    ("GET", "/v1/jobs/1/events", None),
    ("GET", "/v1/notifications", None),
    ("GET", "/v1/workers/1", None),
    ("POST", "/v1/jobs", job_body()),
    ("PATCH", "/v1/workers/me", {"available": False}),
]


def _headers(authorization: str | None) -> dict[str, str]:
    return {"Authorization": authorization} if authorization is not None else {}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS.values(), ids=BAD_AUTHORIZATIONS)
def test_a_missing_or_unknown_token_is_a_401(api: Api, authorization: str | None) -> None:
    error = assert_error(api.client.get("/v1/me", headers=_headers(authorization)), 401)
    assert "token" in error["message"].lower()


@pytest.mark.parametrize("authorization", [None, "Bearer gc_unknown"], ids=["none", "unknown"])
@pytest.mark.parametrize(
    ("method", "path", "body"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED]
)
def test_every_protected_endpoint_refuses_without_a_valid_token(
    api: Api,
    row_counts: RowCounts,
    authorization: str | None,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    before = row_counts()
    r = api.client.open(path, method=method, json=body, headers=_headers(authorization))
    assert_error(r, 401)
    assert row_counts() == before


def test_an_unknown_path_and_method_answer_in_the_error_shape(api: Api) -> None:
    assert_error(api.client.get("/v1/nothing-here"), 404)
    assert_error(api.client.delete("/v1/categories"), 405)


def test_the_token_is_checked_before_the_body(api: Api) -> None:
    r = api.client.post("/v1/jobs", json={"title": ""})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    worker = api.worker()
    r = api.client.post("/v1/jobs", json={"title": ""}, headers=worker["headers"])
    assert r.status_code == 403
