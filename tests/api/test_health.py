"""/healthz, /readyz, /livez and ``gigco health`` on the facts the system keeps.

The stalled worker and the silent beat of a real topology are in
tests/resilience/test_health_probes.py; the blackholed broker in tests/api/test_blackhole.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

import gigco
from gigco import clock, health, migrate
from gigco.config import Settings
from gigco.db import make_engine, normalize_url
from gigco.models import Heartbeat
from gigco.tasks import configure as configure_celery
from gigco.web import create_app
from tests.api.helpers import assert_error
from tests.harness import database
from tests.harness.console import Ops
from tests.harness.env import ADMIN_TOKEN, server_url
from tests.harness.http import Api
from tests.harness.polling import wait_for

GIGCO = Path(sys.executable).parent / "gigco"
HEAD = health._script().get_current_head()
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def empty_database(settings: Settings) -> Iterator[str]:
    """A PostgreSQL database nothing has migrated, the run's role's as its own is; dropped
    afterwards."""
    name = f"gigco_unmigrated_{uuid.uuid4().hex[:8]}"
    owner = sa.make_url(normalize_url(settings.database_url)).username
    try:
        yield database.create_database(server_url(), name, migrated=False, owner=owner)
    finally:
        database.drop_database(server_url(), name)


@pytest.fixture
def app_on(settings: Settings) -> Iterator[object]:
    """Build apps on other settings; the shared Celery app and runtime are restored after."""
    built: list[Flask] = []

    def build(**changes: object) -> Flask:
        built.append(create_app(settings.replace(**changes)))
        return built[-1]

    try:
        yield build
    finally:
        configure_celery(settings)


def test_an_unmigrated_database_is_a_503_everywhere_naming_the_pending_migrations(
    app_on, empty_database: str
) -> None:
    client = app_on(database_url=empty_database).test_client()

    error = assert_error(client.get("/healthz", headers=OPERATOR), 503)
    assert error["down"] == ["migrations"]
    migrations = error["migrations"]
    assert migrations["current"] == [] and migrations["head"] == [HEAD]
    assert migrations["pending"][0] == "0001" and migrations["pending"][-1] == HEAD
    assert "gigco db upgrade" in migrations["reason"]
    # What cannot be read without the schema is unknown, not down.
    assert (error["workers"]["status"], error["beat"]["status"]) == ("unknown", "unknown")
    ready = assert_error(client.get("/readyz"), 503)
    assert ready["down"] == ["migrations"]
    assert client.get("/livez").status_code == 200

    # Every other request: 503 in the error shape, never a 500 UndefinedTable.
    for r in (
        client.get("/v1/categories"),
        client.post("/v1/consumers", json={"name": "Ann", "email": "ann@example.com"}),
    ):
        body = assert_error(r, 503)
        assert "gigco db upgrade" in body["message"]
        assert r.headers["Retry-After"]

    # Half-way: the pending list is what is left.
    before_head = health._script().get_revision(HEAD).down_revision
    migrate.upgrade(empty_database, before_head)
    error = assert_error(client.get("/readyz", headers=OPERATOR), 503)
    assert error["migrations"]["current"] == [before_head]
    assert error["migrations"]["pending"] == [HEAD]
    migrate.upgrade(empty_database)
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/categories").status_code == 200


def test_beat_is_down_after_three_intervals_without_a_sweep_unless_it_just_started(
    app_on, empty_database: str
) -> None:
    migrate.upgrade(empty_database)
    settings = Settings(database_url=empty_database, broker_url="memory://")
    engine = make_engine(empty_database)
    sessions = sa.orm.sessionmaker(engine)
    now = clock.now()

    def beat_part() -> health.Part:
        return health.check(settings, sessions, parts=["beat"], now=now).parts["beat"]

    try:
        never = beat_part()
        assert never.status == "down" and "no beat has ever run" in never.reason
        bound = 3 * settings.sweep_interval_seconds
        with sessions.begin() as session:
            session.add(
                Heartbeat(
                    name="beat:h",
                    kind="beat",
                    started_at=now - dt.timedelta(seconds=bound - 1),
                    beat_at=None,
                )
            )
        assert beat_part().status == "ok"  # just started: healthy until three intervals
        with sessions.begin() as session:
            row = session.get(Heartbeat, "beat:h")
            row.started_at = now - dt.timedelta(hours=1)
            row.beat_at = now - dt.timedelta(seconds=bound + 5)
        silent = beat_part()
        assert silent.status == "down" and f"no sweep for {bound + 5:.0f}s" in silent.reason
        with sessions.begin() as session:
            session.get(Heartbeat, "beat:h").beat_at = now - dt.timedelta(seconds=bound - 1)
        assert beat_part().status == "ok"
    finally:
        engine.dispose()


def test_a_request_waiting_on_a_row_lock_gets_a_503_within_the_lock_timeout(
    api: Api, app_on, engine: sa.Engine
) -> None:
    consumer = api.consumer()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    client = app_on(db_lock_timeout_ms=300).test_client()
    with engine.connect() as conn, conn.begin():
        conn.execute(sa.text("SELECT 1 FROM jobs WHERE id = :id FOR UPDATE"), {"id": job_id})
        started = time.monotonic()
        r = client.post(f"/v1/jobs/{job_id}/cancel", headers=consumer["headers"])
        took = time.monotonic() - started
        assert_error(r, 503)
        assert took < 3, took
    # The lock gone, the same request goes through.
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=consumer["headers"]).status_code == 200


def test_connections_carry_the_statement_and_lock_timeouts(settings: Settings) -> None:
    assert (settings.db_statement_timeout_ms, settings.db_lock_timeout_ms) == (5000, 3000)
    engine = make_engine(settings.database_url, statement_timeout_ms=4500, lock_timeout_ms=1500)
    try:
        with engine.connect() as conn:
            shown = (
                conn.scalar(sa.text("SHOW statement_timeout")),
                conn.scalar(sa.text("SHOW lock_timeout")),
            )
            assert shown == ("4500ms", "1500ms")
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.execute(sa.text("SELECT pg_sleep(10)"))
    finally:
        engine.dispose()


def _gigco_health(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    result = subprocess.run(
        [str(GIGCO), "health", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, json.loads(result.stdout), result.stderr


def test_gigco_health_exits_zero_when_healthy_and_one_naming_what_is_down(
    api: Api, test_env: dict[str, str], empty_database: str
) -> None:
    # Polled: on a loaded machine the embedded beat can miss its three intervals now and then.
    code, body, _ = wait_for(
        lambda: (answer := _gigco_health(test_env))[0] == 0 and answer,
        timeout=15,
        what="gigco health to exit 0",
    )
    assert body["status"] == "ok", body
    assert set(body) >= set(health.PARTS)

    code, body, err = _gigco_health(test_env | {"GIGCO_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert (code, body["down"]) == (1, ["broker"])
    assert "broker" in err

    code, body, err = _gigco_health(test_env | {"GIGCO_DATABASE_URL": empty_database}, "--ready")
    assert (code, body["down"]) == (1, ["migrations"])
    # The operator's view: with the release this command runs.
    assert set(body) == {"status", "down", "checked_at", "version", *health.READY_PARTS}
    assert body["version"] == gigco.__version__
    assert "gigco db upgrade" in err

    # A worker's probe: nothing waits, so an unknown or idle worker is alive.
    code, body, _ = _gigco_health(test_env, "--worker", "celery@nowhere")
    assert (code, body["workers"]["status"]) == (0, "ok")


def test_an_anonymous_healthz_names_no_worker_host_and_no_job_the_operator_sees_both(
    app: Flask, ops: Ops, sessions: sa.orm.sessionmaker[sa.orm.Session], committed: None
) -> None:
    now = clock.now()
    with sessions.begin() as session:
        session.add(
            Heartbeat(
                name="worker:celery@secret-host",
                kind="worker",
                started_at=now,
                beat_at=now,
                seen_at=now,
                in_flight=0,
                queues="celery",
            )
        )
    r = app.test_client().get("/healthz")
    workers = r.get_json()["workers"]
    assert workers["status"] in ("ok", "down")
    assert not health.OPERATOR_ONLY & set(workers), workers
    assert "secret-host" not in r.get_data(as_text=True)
    assert "version" not in r.get_json()
    assert "celery@secret-host" in ops.client.get("/ops/system").get_data(as_text=True)
    # The operator's token shows the detail, with the release this API runs; another
    # party's (or a wrong) token is the public view, never a 401.
    mine = app.test_client().get("/healthz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert mine.get_json()["version"] == gigco.__version__
    names = [node["name"] for node in mine.get_json()["workers"]["nodes"]]
    assert "celery@secret-host" in names
    wrong = app.test_client().get("/healthz", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code in (200, 503) and "version" not in wrong.get_json()


def test_the_previous_release_stays_ready_on_a_database_the_next_one_migrated(
    app_on, empty_database: str
) -> None:
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database)
    with engine.begin() as conn:  # as if the next release had added its migration
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_next'"))
    engine.dispose()
    client = app_on(database_url=empty_database).test_client()
    ready = client.get("/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["migrations"] == {
        "status": "ok",
        "current": ["9999_next"],
        "head": [HEAD],
        "pending": [],
        "ahead": True,
    }
    assert client.get("/v1/categories").status_code == 200
