"""Who gets in where: every endpoint × every kind of caller, from one table (api.md's rules).

api.md, "Authentication and visibility": a missing or unknown token is a 401; a job the caller
may not see is a 404 (its existence is not revealed); a visible job but the wrong party for
the action is a 403. Where the party is right but the job's status is not, the table says
409 (the documented conflict) rather than hiding the row. Each cell runs against a fresh job
in the row's state, inside the test's rolled-back transaction, and a refused request must
leave every row of the database as it was.
"""

from __future__ import annotations

import ast
import hmac
import inspect
import io
import logging
import re
import secrets
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

import gigco
from gigco import logs
from gigco.config import Settings
from gigco.lifecycle import accounts
from gigco.models import JobStatus
from gigco.tasks import configure as configure_celery
from gigco.web import create_app
from tests.harness.bodies import job_body
from tests.harness.env import ADMIN_TOKEN
from tests.security.worlds import PARTIES, World, build, snapshot

S = JobStatus


@dataclass(frozen=True)
class Row:
    """One endpoint in one state of the job, and the status each party gets."""

    method: str
    path: str
    world: JobStatus
    expected: dict[str, int | None]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} [{self.world.value}]"


def row(method: str, path: str, world: JobStatus, codes: str) -> Row:
    """A row of the table: ``codes`` in the order of PARTIES, ``-`` where a party is absent."""
    parsed = [None if c == "-" else int(c) for c in codes.split()]
    assert len(parsed) == len(PARTIES), (method, path)
    return Row(method, path, world, dict(zip(PARTIES, parsed, strict=True)))


J = "/v1/jobs/{job_id}"
W = "/v1/webhook-endpoints"
WE = W + "/{endpoint_id}"
WR = WE + "/deliveries/{delivery_id}/retry"
# fmt: off
MATRIX = [
    #   method   path                         world              none bad own oth asg hld unr op
    row("POST",  "/v1/consumers",             S.ACCEPTED,        "201 201 201 201 -   201 201 201"),
    row("POST",  "/v1/workers",               S.ACCEPTED,        "201 201 201 201 -   201 201 201"),
    row("GET",   "/v1/categories",            S.ACCEPTED,        "200 200 200 200 -   200 200 200"),
    row("GET",   "/livez",                    S.ACCEPTED,        "200 200 200 200 -   200 200 200"),
    row("GET",   "/readyz",                   S.ACCEPTED,        "200 200 200 200 -   200 200 200"),
    row("GET",   "/v1/me",                    S.ACCEPTED,        "401 401 200 200 -   200 200 200"),
    row("PATCH", "/v1/workers/me",            S.ACCEPTED,        "401 401 403 403 -   200 200 403"),
    row("PATCH", "/v1/consumers/me",          S.ACCEPTED,        "401 401 200 200 -   403 403 403"),
    row("POST",  "/v1/tokens/rotate",         S.ACCEPTED,        "401 401 200 200 -   200 200 403"),
    row("GET",   "/v1/workers/{worker_id}",   S.ACCEPTED,        "401 401 200 200 -   200 200 200"),
    row("GET",   "/v1/notifications",         S.ACCEPTED,        "401 401 200 200 -   200 200 403"),
    row("GET",   "/v1/notifications/feed",    S.ACCEPTED,        "401 401 200 200 -   200 200 403"),
    row("GET",   "/v1/opportunities",         S.ACCEPTED,        "401 401 403 403 -   200 200 403"),
    row("POST",  "/v1/jobs",                  S.ACCEPTED,        "401 401 201 201 -   403 403 403"),
    # Lists answer 200 to everyone signed in; what they contain is checked against the
    # GET-one row of the same world (see _listed).
    row("GET",   "/v1/jobs",                  S.ACCEPTED,        "401 401 200 200 -   200 200 200"),
    row("GET",   "/v1/jobs",                  S.SCHEDULED,       "401 401 200 200 200 200 200 200"),
    # Reading one job: its consumer, its assigned worker, the worker holding its pending
    # opportunity (only while it is pending) and the operator.
    row("GET",   J,                           S.ACCEPTED,        "401 401 200 404 -   200 404 200"),
    row("GET",   J,                           S.SCHEDULED,       "401 401 200 404 200 404 404 200"),
    row("GET",   J + "/events",               S.ACCEPTED,        "401 401 200 404 -   200 404 200"),
    row("GET",   J + "/events",               S.SCHEDULED,       "401 401 200 404 200 404 404 200"),
    row("GET",   J + "/reviews",              S.ACCEPTED,        "401 401 200 404 -   200 404 200"),
    row("GET",   J + "/reviews",              S.REVIEW_PENDING,  "401 401 200 404 200 404 404 200"),
    row("GET",   J + "/payment",              S.PAYMENT_FAILED,  "401 401 200 404 200 404 404 200"),
    # Before any attempt there is no payment to show, even to those who see the job.
    row("GET",   J + "/payment",              S.ACCEPTED,        "401 401 404 404 -   404 404 404"),
    # The consumer's actions.
    row("POST",  J + "/offer/accept",         S.OFFERED,         "401 401 200 404 -   404 404 403"),
    row("POST",  J + "/offer/accept",         S.ACCEPTED,        "401 401 409 404 -   403 404 403"),
    row("POST",  J + "/offer/reject",         S.OFFERED,         "401 401 200 404 -   404 404 403"),
    row("POST",  J + "/offer/reject",         S.ACCEPTED,        "401 401 409 404 -   403 404 403"),
    row("POST",  J + "/cancel",               S.ACCEPTED,        "401 401 200 404 -   403 404 403"),
    row("POST",  J + "/cancel",               S.SCHEDULED,       "401 401 200 404 403 404 404 403"),
    row("POST",  J + "/cancel",               S.IN_PROGRESS,     "401 401 409 404 403 404 404 403"),
    # The worker holding the pending opportunity.
    row("POST",  J + "/opportunity/accept",   S.ACCEPTED,        "401 401 403 404 -   200 404 403"),
    # A holder whose opportunity lapsed gets 409 "no longer open" (as a race's loser does).
    row("POST",  J + "/opportunity/accept",   S.SCHEDULED,       "401 401 403 404 403 409 404 403"),
    row("POST",  J + "/opportunity/decline",  S.ACCEPTED,        "401 401 403 404 -   200 404 403"),
    row("POST",  J + "/opportunity/decline",  S.SCHEDULED,       "401 401 403 404 403 409 404 403"),
    # The assigned worker.
    row("POST",  J + "/start",                S.SCHEDULED,       "401 401 403 404 200 404 404 403"),
    row("POST",  J + "/start",                S.IN_PROGRESS,     "401 401 403 404 409 404 404 403"),
    row("POST",  J + "/start",                S.ACCEPTED,        "401 401 403 404 -   403 404 403"),
    row("POST",  J + "/withdraw",             S.SCHEDULED,       "401 401 403 404 200 404 404 403"),
    row("POST",  J + "/withdraw",             S.WORKER_ASSIGNED, "401 401 403 404 200 404 404 403"),
    row("POST",  J + "/withdraw",             S.IN_PROGRESS,     "401 401 403 404 409 404 404 403"),
    row("POST",  J + "/withdraw",             S.ACCEPTED,        "401 401 403 404 -   403 404 403"),
    row("POST",  J + "/complete",             S.IN_PROGRESS,     "401 401 403 404 200 404 404 403"),
    row("POST",  J + "/complete",             S.SCHEDULED,       "401 401 403 404 409 404 404 403"),
    # Either side of the job, once each, in review_pending.
    row("POST",  J + "/reviews",              S.REVIEW_PENDING,  "401 401 201 404 201 404 404 403"),
    row("POST",  J + "/reviews",              S.SCHEDULED,       "401 401 409 404 409 404 404 403"),
    row("POST",  J + "/reviews",              S.ACCEPTED,        "401 401 409 404 -   403 404 403"),
    # The operator.
    row("POST",  J + "/payment/retry",        S.PAYMENT_FAILED,  "401 401 403 404 403 404 404 200"),
    row("POST",  J + "/payment/retry",        S.REVIEW_PENDING,  "401 401 403 404 403 404 404 409"),
    # Disputes: its consumer opens one once paid (the closed world has one already); the
    # parties read it; the operator resolves it.
    row("POST",  J + "/dispute",              S.REVIEW_PENDING,  "401 401 201 404 403 404 404 403"),
    row("POST",  J + "/dispute",              S.SCHEDULED,       "401 401 409 404 403 404 404 403"),
    row("POST",  J + "/dispute",              S.CLOSED,          "401 401 409 404 403 404 404 403"),
    row("GET",   J + "/dispute",              S.CLOSED,          "401 401 200 404 200 404 404 200"),
    row("GET",   J + "/dispute",              S.REVIEW_PENDING,  "401 401 404 404 404 404 404 404"),
    row("POST",  J + "/dispute/resolve",      S.CLOSED,          "401 401 403 404 403 404 404 200"),
    row("POST",  J + "/dispute/resolve",      S.REVIEW_PENDING,  "401 401 403 404 403 404 404 404"),
    row("POST",  J + "/policy/upgrade",       S.ACCEPTED,        "401 401 403 404 -   403 404 200"),
    row("POST",  J + "/policy/upgrade",       S.SCHEDULED,       "401 401 403 404 403 404 404 200"),
    # Lifecycle policies are the marketplace's rules: any signed-in party reads them.
    row("GET",   "/v1/policies/{version}",    S.ACCEPTED,        "401 401 200 200 -   200 200 200"),
    # Webhook endpoints: each party's own; the world's endpoint belongs to the job's consumer.
    row("GET",   W,                           S.ACCEPTED,        "401 401 200 200 -   200 200 200"),
    row("POST",  W,                           S.ACCEPTED,        "401 401 201 201 -   201 201 201"),
    row("GET",   WE,                          S.ACCEPTED,        "401 401 200 404 -   404 404 404"),
    row("PATCH", WE,                          S.ACCEPTED,        "401 401 200 404 -   404 404 404"),
    row("DELETE", WE,                         S.ACCEPTED,        "401 401 204 404 -   404 404 404"),
    row("POST",  WE + "/rotate-secret",       S.ACCEPTED,        "401 401 200 404 -   404 404 404"),
    row("POST",  WE + "/ping",                S.ACCEPTED,        "401 401 202 404 -   404 404 404"),
    row("GET",   WE + "/deliveries",          S.ACCEPTED,        "401 401 200 404 -   404 404 404"),
    row("POST",  WR,                          S.ACCEPTED,        "401 401 202 404 -   404 404 404"),
]
# fmt: on

# Cells where the code disagrees with the table today (none). Each entry must still answer
# exactly as recorded, so that fixing one fails this test until its entry is removed.
KNOWN_DEVIATIONS: dict[tuple[str, str], int] = {}

# Routes that do not take a bearer token, and why they are not rows of MATRIX.
NOT_BEARER = {
    ("GET", "/docs"): "Swagger UI: public, documents the API",
    ("GET", "/docs/assets/<path:filename>"): "Swagger UI's JS and CSS: public",
    ("GET", "/v1/openapi.json"): "the public description of the API",
    ("GET", "/static/<path:filename>"): "Flask's static files: public",
    ("GET", "/healthz"): "public; its code is the system's progress, which depends on a live "
    "worker and beat, not on the caller (tests/api/test_health.py, anonymous and signed in)",
    ("GET", "/metrics"): "Prometheus scrape: the operator bearer token (tests/test_metrics.py)",
    ("GET", "/ops/"): "console: operator session cookie (tests/ops/test_access.py)",
    ("GET", "/ops/jobs"): "console: operator session cookie",
    ("GET", "/ops/jobs/find"): "console: operator session cookie",
    ("GET", "/ops/jobs/<int:job_id>"): "console: operator session cookie",
    ("POST", "/ops/jobs/<int:job_id>/payment/retry"): "console: session cookie and CSRF",
    ("GET", "/ops/webhooks"): "console: operator session cookie",
    ("GET", "/ops/system"): "console: operator session cookie",
    ("GET", "/ops/webhooks/<id:endpoint_id>"): "console: operator session cookie",
    ("POST", "/ops/webhooks/<id:endpoint_id>/deliveries/<id:delivery_id>/retry"): (
        "console: session cookie and CSRF"
    ),
    ("POST", "/ops/jobs/<int:job_id>/cancel"): "console: session cookie and CSRF",
    ("POST", "/ops/jobs/<int:job_id>/rekick"): "console: session cookie and CSRF",
    ("POST", "/ops/jobs/<int:job_id>/policy/upgrade"): "console: session cookie and CSRF",
    ("POST", "/ops/jobs/bulk"): "console: session cookie and CSRF",
    ("POST", "/ops/jobs/<int:job_id>/dispute/resolve"): "console: session cookie and CSRF",
    ("GET", "/ops/finance.csv"): "console: operator session cookie",
    ("GET", "/ops/login"): "console: the login form",
    ("POST", "/ops/login"): "console: the login form",
    ("POST", "/ops/logout"): "console: session cookie and CSRF",
    ("GET", "/ops/static/<path:filename>"): "console stylesheet: public",
}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:int:|id:)?(\w+)>", r"{\1}", rule)


def _routes(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            bearer = rule.rule.startswith("/v1/") and rule.rule != "/v1/openapi.json"
            found.add((method, _openapi_path(rule.rule) if bearer else rule.rule))
    return found


def test_every_route_has_a_row_or_a_reason(app: Flask) -> None:
    routes = _routes(app)
    in_table = {(r.method, r.path) for r in MATRIX} | set(NOT_BEARER)
    assert routes - in_table == set(), "a route without a row in MATRIX (or NOT_BEARER)"
    assert in_table - routes == set(), "a row for a route the app does not have"


# The body each row sends where it is always the same.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/workers/me"): {"available": False},
    ("PATCH", "/v1/consumers/me"): {"payment_method": "pm_card_visa"},
    ("POST", W): {"url": "http://127.0.0.1:9/hook"},
    ("PATCH", WE): {"description": "changed"},
    ("POST", J + "/reviews"): {"rating": 4, "comment": "Fine."},
    ("POST", J + "/dispute"): {"reason": "The tap still drips."},
    ("POST", J + "/dispute/resolve"): {"refund_cents": 100, "note": "Partly redone."},
}


def _body(row: Row) -> dict[str, Any] | None:
    unique = secrets.token_hex(6)
    if row.path == "/v1/consumers":
        return {"name": "New", "email": f"new-{unique}@example.com"}
    if row.path == "/v1/workers":
        return {
            "name": "New",
            "email": f"new-{unique}@example.com",
            "skills": ["plumbing"],
            "location": {"lat": 52.5, "lng": 13.4},
            "service_radius_km": 10,
        }
    if row.method == "POST" and row.path == "/v1/jobs":
        return job_body()
    return BODIES.get((row.method, row.path))


def _call(app: Flask, row: Row, world: World, party: str) -> tuple[int, Any]:
    path = row.path.format(
        job_id=world.job_id,
        worker_id=world.ids["holder"],
        endpoint_id=world.ids["endpoint"],
        delivery_id=world.ids["delivery"],
        version=1,  # the migration's policy of the defaults
    )
    r = app.test_client().open(
        path, method=row.method, json=_body(row), headers=world.headers[party]
    )
    assert r.status_code < 500, r.get_data(as_text=True)
    if r.status_code >= 400:
        body = r.get_json()
        assert body["code"] == r.status_code and body["message"], body
    if r.status_code == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    return r.status_code, (None if r.status_code == 204 else r.get_json())


def _visible(world: JobStatus) -> dict[str, bool]:
    """Who may see a job in ``world``, from the table's GET-one row of that world."""
    get_one = next(r for r in MATRIX if (r.method, r.path, r.world) == ("GET", J, world))
    return {p: code == 200 for p, code in get_one.expected.items()}


def _listed(row: Row, world: World, body: Any) -> bool | None:
    """Whether the world's job is in a list response (None for rows that are not lists)."""
    if row.path == "/v1/jobs" and row.method == "GET":
        return world.job_id in {j["id"] for j in body}
    if row.path == "/v1/opportunities":
        return world.job_id in {o["job_id"] for o in body}
    return None


@pytest.mark.parametrize("row", MATRIX, ids=[r.id for r in MATRIX])
def test_authorization_matrix(isolated_app: Flask, session: Session, row: Row) -> None:
    actual: dict[str, int | None] = {}
    listed: dict[str, bool] = {}
    for party in PARTIES:
        world = build(session, row.world)
        if not world.exists(party):
            actual[party] = None
            continue
        before = snapshot(session, world.job_id)
        code, body = _call(isolated_app, row, world, party)
        actual[party] = code
        if code >= 400:
            assert snapshot(session, world.job_id) == before, f"{party}: {code} changed rows"
        elif (inside := _listed(row, world, body)) is not None:
            listed[party] = inside
    expected = {p: KNOWN_DEVIATIONS.get((row.id, p), code) for p, code in row.expected.items()}
    assert actual == expected, "a cell changed (if a KNOWN_DEVIATION was fixed, remove it)"
    if listed:
        holds = row.path == "/v1/opportunities"
        should = {
            p: (p == "holder" and row.world == S.ACCEPTED) if holds else _visible(row.world)[p]
            for p in listed
        }
        assert listed == should


def test_the_operators_bearer_token_does_not_open_the_console(app: Flask) -> None:
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in ("/ops/", "/ops/jobs", "/ops/jobs/1", "/ops/jobs/find?id=1", "/ops/system"):
        r = client.get(path, headers=bearer)
        assert r.status_code == 302 and r.headers["Location"].startswith("/ops/login")
    r = client.post("/ops/jobs/1/payment/retry", headers=bearer)
    assert (r.status_code, r.headers["Location"]) == (303, "/ops/login")


# --- tokens ----------------------------------------------------------------------------


def test_no_table_holds_a_token_in_the_clear(isolated_app: Flask, session: Session) -> None:
    client = isolated_app.test_client()
    consumer = client.post("/v1/consumers", json={"name": "Ann", "email": "ann@example.com"})
    worker = client.post(
        "/v1/workers",
        json={
            "name": "Wim",
            "email": "wim@example.com",
            "skills": ["plumbing"],
            "location": {"lat": 52.5, "lng": 13.4},
            "service_radius_km": 10,
        },
    )
    tokens = [consumer.json["token"], worker.json["token"]]
    headers = {"Authorization": f"Bearer {tokens[0]}", "Idempotency-Key": "k1"}
    assert client.post("/v1/jobs", json=job_body(), headers=headers).status_code == 201
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {tokens[1]}"}).status_code == 200

    stored = session.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert sorted(stored) == sorted(accounts.hash_token(t) for t in tokens)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in stored)
    # Every row of every table, as text: neither token is anywhere, nor the operator's.
    tables = session.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ).scalars()
    for table in tables:
        dump = session.execute(sa.text(f'SELECT t::text FROM "{table}" t')).scalars().all()
        text = "\n".join(dump)
        for secret in (*tokens, ADMIN_TOKEN):
            assert secret not in text, f"{table} holds a token in the clear"


def _function_node(function: Callable[..., Any]) -> ast.FunctionDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    return node


def _mentions_admin_token(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and "admin_token" in n.id)
        or (isinstance(n, ast.Attribute) and n.attr == "admin_token")
        for n in ast.walk(node)
    )


def test_the_operator_token_is_compared_in_constant_time(
    isolated_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(accounts.hmac, "compare_digest", spy)
    client = isolated_app.test_client()
    guess = ADMIN_TOKEN[:-1] + "x"
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {guess}"}).status_code == 401
    r = client.get("/v1/me", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.json == {"role": "operator"}
    assert (guess.encode(), ADMIN_TOKEN.encode()) in calls
    assert (ADMIN_TOKEN.encode(), ADMIN_TOKEN.encode()) in calls

    # And no code compares the operator token with ==, != or in, which stop at the first
    # differing character: every such comparison that mentions admin_token is flagged.
    leaky = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)
    offenders = []
    for path in Path(gigco.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Compare)
                and any(isinstance(op, leaky) for op in node.ops)
                and _mentions_admin_token(node)
            ):
                offenders.append(f"{path}:{node.lineno}")
    assert offenders == []
    assert "compare_digest" in ast.unparse(_function_node(accounts.authenticate))


# --- logs ------------------------------------------------------------------------------


@pytest.fixture
def debug_log(
    settings: Settings, isolated_sessions: Any
) -> Iterator[tuple[Flask, Flask, io.StringIO]]:
    """The app, and one whose database is down, logging at DEBUG into one buffer."""
    down = create_app(
        settings.replace(log_level="DEBUG", database_url="postgresql://postgres@127.0.0.1:1/x")
    )
    app = create_app(settings.replace(log_level="DEBUG"))  # the handler both log through
    app.extensions["gigco_sessions"] = isolated_sessions
    app.extensions["gigco_read_sessions"] = isolated_sessions
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME]
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    previous = handler.setStream(out)
    try:
        yield app, down, out
    finally:
        handler.setStream(previous)
        logging.getLogger().setLevel(settings.log_level)
        configure_celery(settings)


def test_the_operator_token_never_reaches_a_log_line(
    debug_log: tuple[Flask, Flask, io.StringIO],
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, down, out = debug_log
    world = build(session, S.IN_PROGRESS)
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    job = f"/v1/jobs/{world.job_id}"
    caplog.set_level(logging.DEBUG)
    answers = [
        client.get("/v1/me", headers=bearer).status_code,
        client.get(job, headers=bearer).status_code,
        client.get("/v1/jobs?page=0", headers=bearer).status_code,  # 422
        client.get("/v1/jobs/999999999", headers=bearer).status_code,  # 404
        client.post(f"{job}/payment/retry", headers=bearer).status_code,  # 409
        client.post(f"{job}/start", headers=bearer).status_code,  # 403
        client.get("/v1/notifications", headers=bearer).status_code,  # 403
        client.post(
            "/v1/consumers", data="{", content_type="application/json", headers=bearer
        ).status_code,  # 400
        client.get("/v1/me", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}).status_code,
        client.get("/v1/me", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"}).status_code,
        down.test_client().get(job, headers=bearer).status_code,  # 503, and a warning
    ]
    assert answers == [200, 200, 422, 404, 409, 403, 403, 400, 401, 401, 503]
    written = out.getvalue()
    assert 'msg="database unavailable:' in written  # the failing request was logged...
    assert ADMIN_TOKEN not in written  # ...without the token, as was everything else
    assert caplog.records and all(ADMIN_TOKEN not in r.getMessage() for r in caplog.records)
