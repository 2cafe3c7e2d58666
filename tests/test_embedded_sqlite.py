"""The embedded SQLite default keeps PostgreSQL's promises: ids past BIGINT are a 404, and
one job's steps are serialised (``BEGIN IMMEDIATE`` stands in for ``FOR UPDATE``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from gigco import migrate
from gigco.config import Settings, load_settings
from gigco.db import make_engine, session_factory
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.matching import match_job
from gigco.models import JobEvent, JobStatus
from gigco.tasks import configure
from tests import factories as f
from tests.api.helpers import assert_error
from tests.harness.env import ADMIN_TOKEN


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on a fresh, migrated embedded database; one matching round only."""
    settings = load_settings(
        {
            "GIGCO_DATA_DIR": str(tmp_path),
            "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIGCO_MATCH_MAX_ROUNDS": "1",
        }
    )
    migrate.upgrade(settings.database_url)
    return settings


@pytest.fixture
def sqlite_app(sqlite_settings: Settings, settings: Settings) -> Iterator[Flask]:
    """The API on the embedded database; the suite's Celery settings are put back after."""
    from gigco.web import create_app

    try:
        yield create_app(sqlite_settings)
    finally:
        configure(settings)


@pytest.mark.parametrize("job_id", [str(2**63), "99999999999999999999"])
def test_an_id_past_bigint_is_a_404_on_sqlite(sqlite_app: Flask, job_id: str) -> None:
    client = sqlite_app.test_client()
    operator = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/events", f"/v1/workers/{job_id}"):
        assert_error(client.get(path, headers=operator), 404)
    assert_error(client.post(f"/v1/jobs/{job_id}/cancel", headers=operator), 404)
    assert client.get(f"/v1/jobs/{2**63 - 1}", headers=operator).status_code == 404


def test_two_match_job_runs_of_one_job_are_serialised_on_sqlite(
    sqlite_settings: Settings,
) -> None:
    engine = make_engine(sqlite_settings.database_url)
    sessions: sessionmaker[Session] = session_factory(engine)
    with sessions() as session, session.begin():
        (job,) = f.jobs(session, 1, status=JobStatus.ACCEPTED)  # no worker anywhere near
        job_id = job.id

    # Each run waits, after reading the job, for the other to have read it too (or 2 s).
    # With the job's steps serialised the second cannot read before the first commits, so
    # the wait runs out; without, both read "accepted" and both start a round.
    both_read = threading.Barrier(2, timeout=2)
    waited = threading.local()

    @event.listens_for(engine, "after_cursor_execute")
    def _meet(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        reads_job = statement.lstrip().upper().startswith("SELECT") and "FROM jobs" in statement
        if reads_job and not getattr(waited, "done", False):
            waited.done = True
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            with sessions() as session, session.begin():
                match_job(session, job_id, StepContext(settings=sqlite_settings))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert both_read.broken, "both runs read the job before either wrote"

    with sessions() as session:
        types = session.scalars(
            sa.select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)
        ).all()
    assert types[-2:] == ["matching_round_started", "no_worker"], types
    assert types.count("matching_round_started") == 1, types
    engine.dispose()
