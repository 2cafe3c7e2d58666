"""Hostile request bodies up to the 64 KiB limit: each refused with a 4xx, each in linear time.

A public endpoint (POST /v1/consumers) and an authenticated one (POST /v1/jobs) answer every
shape of ``tests.harness.bodies.hostile_bodies`` in the error envelope within 0.5 s. The old
string regex took 12 s on an escaped-quote run; ``bench/hostile.py`` measures server CPU.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from gigco.models import JobStatus
from gigco.web import MAX_BODY_BYTES
from tests.api.helpers import assert_error
from tests.harness.bodies import hostile_bodies
from tests.harness.database import row_counts
from tests.security.worlds import World, build

BUDGET_SECONDS = 0.5
BODIES = hostile_bodies()


@pytest.fixture
def world(session: Session) -> World:
    """A consumer who may post jobs."""
    return build(session, JobStatus.DRAFT)


@pytest.fixture
def client(isolated_app: Flask) -> FlaskClient:
    """A client of the app inside the test's transaction."""
    return isolated_app.test_client()


def test_the_hostile_bodies_are_near_the_limit() -> None:
    assert all(MAX_BODY_BYTES // 2 < len(b) <= MAX_BODY_BYTES for b in BODIES.values()), {
        k: len(b) for k, b in BODIES.items()
    }


@pytest.mark.parametrize("name", BODIES)
@pytest.mark.parametrize("route", ["public", "authenticated"])
def test_a_hostile_body_is_a_4xx_within_the_budget(
    client: FlaskClient, world: World, session: Session, name: str, route: str
) -> None:
    path, headers = (
        ("/v1/consumers", {}) if route == "public" else ("/v1/jobs", world.headers["owner"])
    )
    before = row_counts(session)
    started = time.perf_counter()
    r = client.post(path, data=BODIES[name], content_type="application/json", headers=headers)
    elapsed = time.perf_counter() - started
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)[:500]
    assert_error(r, r.status_code)
    assert elapsed < BUDGET_SECONDS, f"{name} on {path} took {elapsed:.3f} s"
    assert row_counts(session) == before


def test_an_integer_past_4300_digits_is_a_400_naming_the_cause(client: FlaskClient) -> None:
    r = client.post(
        "/v1/consumers", data=BODIES["integer-4301-digits"], content_type="application/json"
    )
    error = assert_error(r, 400)
    assert "number too long" in error["message"]


def test_the_body_is_parsed_once(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    calls: list[int] = []
    loads = json.loads
    monkeypatch.setattr(json, "loads", lambda s, *a, **k: calls.append(1) or loads(s, *a, **k))
    r = client.post("/v1/consumers", json={"name": "Once", "email": "once@example.com"})
    assert r.status_code == 201, r.json
    assert len(calls) == 1


def test_values_up_to_the_limit_are_read_and_commas_in_strings_do_not_count(
    client: FlaskClient,
) -> None:
    from gigco.web.body import MAX_JSON_VALUES

    # Counted: strings, brackets and separators, so {"name": [...], "email": "…"} is 8
    # plus the list's commas.
    items = ",".join(["1"] * (MAX_JSON_VALUES - 7))
    body = f'{{"name": [{items}], "email": "v@example.com, and more, commas"}}'
    assert_error(client.post("/v1/consumers", data=body, content_type="application/json"), 422)
    over = f'{{"name": [{items},1], "email": "v@example.com"}}'
    r = client.post("/v1/consumers", data=over, content_type="application/json")
    assert f"more than {MAX_JSON_VALUES} values" in assert_error(r, 400)["message"]
