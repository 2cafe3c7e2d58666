"""History on both dialects: a transition and an event without a move are written in seq
order and handed to each registered sink once, in their transaction; a sink whose question
answers "nobody listens" is not called; a rolled-back change hands over nothing that lasts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import migrate
from gigco.config import load_settings
from gigco.db import make_engine, session_factory
from gigco.lifecycle.history import EventSink, record_event, register_sink, unregister_sink
from gigco.lifecycle.principals import SYSTEM
from gigco.lifecycle.schedule import Next
from gigco.lifecycle.transitions import transition
from gigco.models import JobEvent, JobStatus
from tests import factories as f
from tests.harness.env import ADMIN_TOKEN


@pytest.fixture(params=["postgresql", "sqlite"])
def any_session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session on the suite's PostgreSQL database, or on a fresh embedded SQLite one."""
    if request.param == "postgresql":
        yield request.getfixturevalue("session")
        return
    settings = load_settings({"GIGCO_DATA_DIR": str(tmp_path), "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN})
    migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@pytest.fixture
def handed() -> Iterator[tuple[list[tuple[int, int, str]], list[str]]]:
    """Two sinks: one that always listens (recording what it is handed), one that never."""
    seen: list[tuple[int, int, str]] = []
    deaf: list[str] = []
    register_sink(EventSink("test-all", lambda s, job_id, e: seen.append((job_id, e.seq, e.type))))
    register_sink(
        EventSink("test-none", lambda s, job_id, e: deaf.append(e.type), listening=sa.false())
    )
    try:
        yield seen, deaf
    finally:
        unregister_sink("test-all")
        unregister_sink("test-none")


def test_every_event_is_written_in_order_and_handed_to_listening_sinks_once(
    any_session: Session, handed: tuple[list[tuple[int, int, str]], list[str]]
) -> None:
    seen, deaf = handed
    job = f.job(any_session)
    moved = transition(
        any_session, job.id, JobStatus.DRAFT, JobStatus.PRICED, actor=SYSTEM, then=Next.now()
    )
    assert moved is not None and moved.status == JobStatus.PRICED
    record_event(any_session, job.id, "note", actor=SYSTEM, data={"n": 1})
    lost = transition(
        any_session, job.id, JobStatus.DRAFT, JobStatus.PRICED, actor=SYSTEM, then=Next.now()
    )
    assert lost is None  # the job moved on: a lost race writes and hands over nothing
    any_session.flush()
    written = any_session.execute(
        sa.select(JobEvent.seq, JobEvent.type)
        .where(JobEvent.job_id == job.id)
        .order_by(JobEvent.seq)
    ).all()
    assert [t for _, t in written][-2:] == ["priced", "note"]
    assert [s for s, _ in written] == list(range(1, len(written) + 1))
    assert seen == [(job.id, s, t) for s, t in written[-2:]]
    assert deaf == []
