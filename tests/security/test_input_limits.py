"""Input that must not break the service: huge, deep, broken, out-of-range or hostile.

Each request is refused with a 4xx in the error envelope and writes nothing, or is accepted
and its text stored and shown back byte for byte; nothing is ever a 5xx. The tests run in
the test's rolled-back transaction and count rows on the same connection, so a refused
request that wrote anything is caught. (tests/api covers the first cases of each kind:
64 KiB on /v1/jobs and /v1/consumers, malformed JSON, NaN and Infinity in a job.)
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from gigco.models import JobStatus
from gigco.web import MAX_BODY_BYTES, MAX_JSON_DEPTH
from gigco.web.db import session as db_session
from tests.api.helpers import assert_error
from tests.harness.bodies import job_body
from tests.harness.console import Ops, csrf_from
from tests.harness.database import row_counts
from tests.security.worlds import World, build

S = JobStatus
Counts = Callable[[], dict[str, int]]
HUGE_ID = "99999999999999999999"  # past bigint (2^63 - 1) and past any int a database has

WORKER = {
    "name": "Wanda",
    "email": "wanda@example.com",
    "skills": ["plumbing"],
    "location": {"lat": 52.52, "lng": 13.405},
    "service_radius_km": 25,
}


@pytest.fixture
def counts(session: Session) -> Counts:
    """Rows per table as the app's own connection sees them (the transaction is shared)."""
    return lambda: row_counts(session)


@pytest.fixture
def world(session: Session) -> World:
    """A job in review_pending, its consumer and its worker (every body-taking route applies)."""
    return build(session, S.REVIEW_PENDING)


@pytest.fixture
def client(isolated_app: Flask) -> FlaskClient:
    """A client of the app inside the test's transaction."""
    return isolated_app.test_client()


def _routes(world: World) -> list[tuple[str, str, dict[str, str]]]:
    """Every route that reads a JSON body, with a caller who may use it."""
    job = f"/v1/jobs/{world.job_id}"
    return [
        ("POST", "/v1/consumers", {}),
        ("POST", "/v1/workers", {}),
        ("PATCH", "/v1/workers/me", world.headers["assigned"]),
        ("POST", "/v1/jobs", world.headers["owner"]),
        ("POST", f"{job}/reviews", world.headers["owner"]),
    ]


def _raw(
    client: FlaskClient, method: str, path: str, data: bytes | str, headers: dict[str, str]
) -> TestResponse:
    return client.open(
        path, method=method, data=data, content_type="application/json", headers=headers
    )


# --- size and shape -----------------------------------------------------------------------


def test_every_json_route_refuses_a_body_over_64_kib(
    client: FlaskClient, world: World, counts: Counts
) -> None:
    before = counts()
    big = json.dumps({"name": "n" * (MAX_BODY_BYTES + 1)})
    for method, path, headers in _routes(world):
        assert_error(_raw(client, method, path, big, headers), 413)
    # A route that takes no body still refuses one over the limit.
    signal = f"/v1/jobs/{world.job_id}/cancel"
    assert_error(_raw(client, "POST", signal, big, world.headers["owner"]), 413)
    assert counts() == before


def _chunked(client: FlaskClient, body: bytes) -> TestResponse:
    """POST ``body`` with no Content-Length, as a chunked request reaches the app."""
    return client.post(
        "/v1/consumers",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_64_kib_is_a_413_not_a_truncated_read(
    client: FlaskClient, counts: Counts
) -> None:
    before = counts()
    body = json.dumps({"name": "n" * (MAX_BODY_BYTES + 1), "email": "big@example.com"})
    assert_error(_chunked(client, body.encode()), 413)
    # Valid JSON padded past the limit: cut at 64 KiB it would still parse and be accepted.
    padded = json.dumps({"name": "Pad", "email": "pad@example.com"}).ljust(MAX_BODY_BYTES + 10)
    assert_error(_chunked(client, padded.encode()), 413)
    assert counts() == before
    exact = json.dumps({"name": "Fits", "email": "fits@example.com"}).ljust(MAX_BODY_BYTES)
    assert _chunked(client, exact.encode()).status_code == 201


NESTED = {
    "arrays": "[" * 10_000 + "]" * 10_000,
    "objects": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "in-a-field": '{"name": ' + "[" * 10_000 + "]" * 10_000 + ', "email": "x@example.com"}',
    "just-too-deep": "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
}


@pytest.mark.parametrize("body", NESTED.values(), ids=NESTED)
def test_deeply_nested_json_is_a_400_on_every_route(
    client: FlaskClient, world: World, counts: Counts, body: str
) -> None:
    before = counts()
    for method, path, headers in _routes(world):
        error = assert_error(_raw(client, method, path, body, headers), 400)
        assert f"deeper than {MAX_JSON_DEPTH}" in error["message"]
    assert counts() == before


def test_nesting_up_to_the_limit_is_read_and_brackets_in_strings_do_not_count(
    client: FlaskClient, world: World
) -> None:
    deep = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)  # inside the body's object
    r = _raw(client, "POST", "/v1/consumers", f'{{"name": {deep}, "email": "d@example.com"}}', {})
    assert_error(r, 422, "name")  # parsed, then refused for what it is: not a string
    brackets = "[{" * 2000
    r = client.post("/v1/jobs", json=job_body(description=brackets), headers=world.headers["owner"])
    assert r.status_code == 201, r.json
    assert r.json["description"] == brackets


# --- bytes and text that are not storable -------------------------------------------------

BROKEN_TEXT = {
    "invalid-utf8-in-a-string": b'{"name": "\xff\xfe", "email": "b@example.com"}',
    "overlong-utf8": b'{"name": "\xc0\xaf", "email": "b@example.com"}',
    "utf16": json.dumps({"name": "Ann", "email": "b@example.com"}).encode("utf-16"),
    "truncated-multibyte": b'{"name": "\xe2\x82", "email": "b@example.com"}',
}


@pytest.mark.parametrize("data", BROKEN_TEXT.values(), ids=BROKEN_TEXT)
def test_bytes_that_are_not_utf8_json_are_a_400(
    client: FlaskClient, counts: Counts, data: bytes
) -> None:
    before = counts()
    assert_error(_raw(client, "POST", "/v1/consumers", data, {}), 400)
    assert counts() == before


UNSTORABLE = {"nul": "a\u0000b", "lone-surrogate": "a\ud800b", "lone-low-surrogate": "\udfff"}


def _text_fields(world: World) -> list[tuple[str, str, dict[str, Any], str, dict[str, str]]]:
    """(method, path, body, field, headers) for every text field a client sends."""
    job = f"/v1/jobs/{world.job_id}"
    owner = world.headers["owner"]
    return [
        ("POST", "/v1/consumers", {"name": "{}", "email": "t@example.com"}, "name", {}),
        ("POST", "/v1/workers", {**WORKER, "name": "{}"}, "name", {}),
        ("POST", "/v1/workers", {**WORKER, "skills": ["{}"]}, "skills", {}),
        ("POST", "/v1/jobs", job_body(title="{}"), "title", owner),
        ("POST", "/v1/jobs", job_body(description="{}"), "description", owner),
        ("POST", "/v1/jobs", job_body(category="{}"), "category", owner),
        ("POST", f"{job}/reviews", {"rating": 5, "comment": "{}"}, "comment", owner),
        ("PATCH", "/v1/workers/me", {"skills": ["{}"]}, "skills", world.headers["assigned"]),
    ]


def _fill(body: dict[str, Any], text: str) -> dict[str, Any]:
    def put(value: Any) -> Any:
        if value == "{}":
            return text
        if isinstance(value, list):
            return [put(v) for v in value]
        return value

    return {k: put(v) for k, v in body.items()}


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE)
def test_text_postgresql_cannot_store_is_a_422_naming_the_field(
    client: FlaskClient, world: World, counts: Counts, text: str
) -> None:
    before = counts()
    for method, path, body, field, headers in _text_fields(world):
        data = json.dumps(_fill(body, text))  # \u escapes: valid JSON, unstorable text
        assert_error(_raw(client, method, path, data, headers), 422, field)
    r = client.post(
        "/v1/jobs",
        json=job_body(),
        headers={**world.headers["owner"], "Idempotency-Key": "key\u0000"},
    )
    assert_error(r, 422, "Idempotency-Key")
    assert counts() == before


# --- numbers out of range ---------------------------------------------------------------

HUGE_FLOAT = str(10**400)
FLOAT_FIELDS = [
    ("POST", "/v1/jobs", "owner", job_body(location={"lat": 1, "lng": 2}), "location.lat"),
    ("POST", "/v1/jobs", "owner", job_body(location={"lat": 1, "lng": 2}), "location.lng"),
    ("POST", "/v1/jobs", "owner", job_body(), "estimated_hours"),
    ("POST", "/v1/workers", "none", WORKER, "service_radius_km"),
    ("POST", "/v1/workers", "none", WORKER, "location.lat"),
    ("PATCH", "/v1/workers/me", "assigned", {"service_radius_km": 1}, "service_radius_km"),
    ("PATCH", "/v1/workers/me", "assigned", {"location": {"lat": 1, "lng": 2}}, "location.lng"),
]


def _with(body: dict[str, Any], field: str, literal: str) -> str:
    """``body`` as JSON with ``field`` (dotted) replaced by the raw JSON ``literal``."""
    marker = "__value__"
    changed = json.loads(json.dumps(body))
    *outer, last = field.split(".")
    target = changed
    for name in outer:
        target = target[name]
    target[last] = marker
    return json.dumps(changed).replace(f'"{marker}"', literal)


@pytest.mark.parametrize(
    "literal", [HUGE_FLOAT, "-" + HUGE_FLOAT, "1e400", "NaN", "Infinity", "-Infinity"]
)
@pytest.mark.parametrize(
    ("method", "path", "party", "body", "field"),
    FLOAT_FIELDS,
    ids=[f"{m} {p} {f}" for m, p, _, _, f in FLOAT_FIELDS],
)
def test_a_float_field_refuses_huge_and_special_numbers(
    client: FlaskClient,
    world: World,
    counts: Counts,
    literal: str,
    method: str,
    path: str,
    party: str,
    body: dict[str, Any],
    field: str,
) -> None:
    before = counts()
    data = _with(
        {**body, "email": "f@example.com"} if path == "/v1/workers" else body, field, literal
    )
    assert_error(_raw(client, method, path, data, world.headers[party]), 422, field)
    assert counts() == before


@pytest.mark.parametrize("literal", [str(2**70), str(-(2**70)), "NaN", "Infinity", "1e400"])
def test_an_integer_field_refuses_huge_and_special_numbers(
    client: FlaskClient, world: World, counts: Counts, literal: str
) -> None:
    before = counts()
    path = f"/v1/jobs/{world.job_id}/reviews"
    data = _with({"rating": 5}, "rating", literal)
    assert_error(_raw(client, "POST", path, data, world.headers["owner"]), 422, "rating")
    assert counts() == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"page_size={2**70}", "page_size"),
        (f"page_size=-{2**70}", "page_size"),
        (f"page=-{2**70}", "page"),
        ("page=1e400", "page"),
        ("page=NaN", "page"),
    ],
)
def test_paging_out_of_range_is_refused_by_name(
    client: FlaskClient, world: World, query: str, field: str
) -> None:
    for path in ("/v1/jobs", "/v1/notifications"):
        r = client.get(f"{path}?{query}", headers=world.headers["owner"])
        assert_error(r, 422, field)


@pytest.mark.parametrize("page", [2**31, 2**62, 2**70, 10**400])
def test_a_page_past_the_end_is_empty_however_far(
    client: FlaskClient, world: World, page: int
) -> None:
    for path in ("/v1/jobs", "/v1/notifications"):
        r = client.get(f"{path}?page={page}&page_size=100", headers=world.headers["owner"])
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.json == []
        paging = json.loads(r.headers["X-Pagination"])
        assert "page" not in paging and "next_page" not in paging  # past the last page


@pytest.mark.parametrize("after", [f"0-{2**63}", f"{2**70}-1", "1", "1-", "-1-2", "a-b", "1-2-3"])
def test_a_feed_cursor_that_is_not_one_is_refused_by_name(
    client: FlaskClient, world: World, after: str
) -> None:
    r = client.get(f"/v1/notifications/feed?after={after}", headers=world.headers["owner"])
    assert_error(r, 422, "after")


JOB_ROUTES = [
    ("GET", ""),
    ("GET", "/events"),
    ("GET", "/reviews"),
    ("GET", "/payment"),
    ("POST", "/offer/accept"),
    ("POST", "/offer/reject"),
    ("POST", "/cancel"),
    ("POST", "/opportunity/accept"),
    ("POST", "/opportunity/decline"),
    ("POST", "/start"),
    ("POST", "/complete"),
    ("POST", "/payment/retry"),
    ("POST", "/reviews"),
]


@pytest.mark.parametrize("job_id", [str(2**31), str(2**63), HUGE_ID, "1" + "0" * 400])
def test_an_id_past_any_integer_column_is_a_404(
    client: FlaskClient, world: World, counts: Counts, job_id: str
) -> None:
    before = counts()
    operator = world.headers["operator"]  # who sees every job that exists
    for method, tail in JOB_ROUTES:
        body = {"rating": 5} if tail == "/reviews" and method == "POST" else None
        r = client.open(f"/v1/jobs/{job_id}{tail}", method=method, json=body, headers=operator)
        assert_error(r, 404)
    assert_error(client.get(f"/v1/workers/{job_id}", headers=operator), 404)
    assert counts() == before


def test_the_console_refuses_ids_past_any_integer_column(isolated_app: Flask) -> None:
    ops = Ops(isolated_app.test_client())
    assert ops.login().status_code == 303
    r = ops.client.get(f"/ops/jobs/{HUGE_ID}")
    assert r.status_code == 404 and f"Job {HUGE_ID} not found" in r.text
    r = ops.client.get(f"/ops/jobs/find?id={HUGE_ID}")
    assert r.status_code == 400
    for arg in ("after", "consumer", "worker"):
        r = ops.client.get(f"/ops/jobs?{arg}={2**70}")
        assert r.status_code == 400, arg
    r = ops.client.post(
        "/ops/jobs/bulk",
        data={
            "csrf_token": csrf_from(ops.page("/ops/jobs").text),
            "action": "cancel",
            "reason": "r",
            "job": str(2**70),
        },
    )
    assert r.status_code == 400


# --- hostile text is stored and shown verbatim ----------------------------------------------

HOSTILE = [
    "Robert'); DROP TABLE jobs;--",
    "' OR '1'='1' --",
    '"; SELECT pg_sleep(10); --',
    "%s %(title)s {0} $1 :name ?",
    "\\'\\\"\\\\ `backticks` $$dollar$$",
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "&lt;already&gt; &amp; escaped",
    "emoji 🧰, RTL \u202eevil\u202c, zero\u200bwidth",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_stored_and_returned_verbatim(
    client: FlaskClient, world: World, text: str
) -> None:
    owner = world.headers["owner"]
    consumer = client.post("/v1/consumers", json={"name": text, "email": "h@example.com"})
    assert consumer.status_code == 201, consumer.json
    assert consumer.json["name"] == text
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {consumer.json['token']}"})
    assert me.json["name"] == text
    worker = client.post("/v1/workers", json={**WORKER, "name": text, "email": "hw@example.com"})
    assert worker.status_code == 201, worker.json
    shown = client.get(f"/v1/workers/{worker.json['id']}", headers=owner)
    assert shown.json["name"] == text

    key = text[:255]
    body = job_body(title=text[:200], description=text)
    headers = {**owner, "Idempotency-Key": key} if key.isascii() else owner
    r = client.post("/v1/jobs", json=body, headers=headers)
    assert r.status_code == 201, r.json
    job = client.get(f"/v1/jobs/{r.json['id']}", headers=owner).json
    assert (job["title"], job["description"]) == (text[:200], text)
    if key.isascii():  # header values are latin-1 on the wire; the key is replayed verbatim
        again = client.post("/v1/jobs", json=body, headers=headers)
        assert again.headers["Idempotent-Replayed"] == "true" and again.json["id"] == job["id"]

    review = client.post(
        f"/v1/jobs/{world.job_id}/reviews", json={"rating": 3, "comment": text}, headers=owner
    )
    assert review.status_code == 201, review.json
    reviews = client.get(f"/v1/jobs/{world.job_id}/reviews", headers=owner).json
    assert [r["comment"] for r in reviews] == [text]
    # The tables the injections name are all still there and still answer.
    assert client.get("/v1/jobs", headers=owner).status_code == 200


@pytest.mark.parametrize("field", ["category", "skills"])
def test_hostile_text_in_a_lookup_field_is_an_unknown_name(
    client: FlaskClient, world: World, counts: Counts, field: str
) -> None:
    before = counts()
    for text in HOSTILE[:4]:
        if field == "category":
            r = client.post(
                "/v1/jobs", json=job_body(category=text[:64]), headers=world.headers["owner"]
            )
        else:
            r = client.post("/v1/workers", json={**WORKER, "skills": [text[:64]]})
        assert "Unknown category" in assert_error(r, 422, field)["errors"][field][0]
    assert counts() == before


def test_html_from_a_worker_and_a_review_is_escaped_on_the_console(
    isolated_app: Flask, session: Session, world: World
) -> None:
    worker_name = '<b onmouseover="x()">Wim</b>'
    comment = "<script>steal(document.cookie)</script> & more"
    session.execute(
        sa.text("UPDATE workers SET name = :name WHERE id = :id"),
        {"name": worker_name, "id": world.ids["assigned"]},
    )
    client = isolated_app.test_client()
    r = client.post(
        f"/v1/jobs/{world.job_id}/reviews",
        json={"rating": 2, "comment": comment},
        headers=world.headers["assigned"],
    )
    assert r.status_code == 201, r.json
    ops = Ops(isolated_app.test_client())
    assert ops.login().status_code == 303
    page = ops.page(f"/ops/jobs/{world.job_id}").text
    assert worker_name not in page and "<script>steal" not in page
    assert "&lt;b onmouseover=&#34;x()&#34;&gt;Wim&lt;/b&gt;" in page
    assert "&lt;script&gt;steal(document.cookie)&lt;/script&gt; &amp; more" in page


# --- methods, and values only the database refuses -----------------------------------------


def test_a_method_a_route_does_not_have_is_a_405_naming_those_it_has(isolated_app: Flask) -> None:
    client = isolated_app.test_client()
    checked = 0
    for rule in isolated_app.url_map.iter_rules():
        if not (rule.rule.startswith("/v1/") or rule.rule == "/healthz"):
            continue
        allowed = set(rule.methods or ())
        method = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in allowed)
        path = re.sub(r"<(?:int:|id:)?\w+>", "1", rule.rule)
        r = client.open(path, method=method)
        assert_error(r, 405)
        assert {m.strip() for m in r.headers["Allow"].split(",")} == allowed, path
        checked += 1
    assert checked >= 20


def test_a_value_postgresql_refuses_is_a_422_not_a_500(app: Flask) -> None:
    # No route is known to let such a value through any more; this pins the safety net.
    @app.get("/v1/probe-out-of-range")
    def probe() -> dict[str, int]:
        db_session().execute(sa.text("SELECT CAST(:v AS bigint)"), {"v": str(2**70)})
        return {}

    error = assert_error(app.test_client().get("/v1/probe-out-of-range"), 422)
    assert error["message"] == "A value in the request is out of range."
