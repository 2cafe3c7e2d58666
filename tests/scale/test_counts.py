"""Jobs per status and events per kind are counters the database keeps exact (migration
0008's triggers), so that a scrape and the dashboard read them at any size, not the tables."""

from __future__ import annotations

import random
import threading
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from gigco import migrate
from gigco.db import make_engine
from gigco.lifecycle.counts import events_per_kind, jobs_per_status
from gigco.lifecycle.principals import SYSTEM
from gigco.lifecycle.schedule import Next
from gigco.lifecycle.transitions import transition
from gigco.models import SHARDS, Job, JobEvent, JobStatus
from gigco.web.metrics import CACHE_SECONDS
from tests import factories as f
from tests.harness.console import Ops
from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import Api
from tests.harness.journeys import closed_job
from tests.scale.test_plans import ROWS, plan, seed_jobs, seq_scans, statements

S = JobStatus
DEADLINE_INDEXES = {"ix_jobs_timer_at", "ix_jobs_step_due_at"}
OVERRUN_INDEXES = {"ix_jobs_overrun", "ix_jobs_status_id"}


def seed_events(session: Session, per_job: int = 2) -> None:
    """``per_job`` history events for every job there is (a status change and a note)."""
    session.execute(
        sa.text(
            "INSERT INTO job_events (job_id, seq, type, from_status, to_status, actor, data,"
            " created_at) SELECT j.id, s, CASE WHEN s = 1 THEN 'created' ELSE 'note' END,"
            " NULL, CASE WHEN s = 1 THEN 'draft' END, 'system', '{}', now()"
            " FROM jobs j, generate_series(1, :n) AS s"
        ),
        {"n": per_job},
    )


def counted_from_tables(session: Session) -> tuple[dict[S, int], dict[Any, int]]:
    """What the counters must say, counted the slow way (GROUP BY over both tables)."""
    by_status = sa.select(Job.status, sa.func.count()).group_by(Job.status)
    statuses = {s: int(n) for s, n in session.execute(by_status).all()}
    kinds = session.execute(
        sa.select(JobEvent.type, JobEvent.from_status, JobEvent.to_status, sa.func.count())
        .group_by(JobEvent.type, JobEvent.from_status, JobEvent.to_status)
    ).all()  # fmt: skip
    return {s: statuses.get(s, 0) for s in S}, {(t, a, b): n for t, a, b, n in kinds}


def assert_exact(engine: sa.Engine) -> None:
    """The counters equal the tables' GROUP BYs, both read in one snapshot."""
    snapshot = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with snapshot as conn, Session(bind=conn) as session:
        counters = jobs_per_status(session), events_per_kind(session)
        assert counters == counted_from_tables(session)


def test_a_scrape_and_the_dashboard_read_neither_jobs_nor_job_events(
    isolated_app: Flask, session: Session
) -> None:
    seed_jobs(session, ROWS)
    seed_events(session)
    session.execute(sa.text("ANALYZE jobs; ANALYZE job_events"))
    isolated_app.extensions["gigco_metrics_database"].ttl = 0
    console = Ops(isolated_app.test_client())
    assert console.login().status_code == 303
    try:
        with statements(session) as seen:
            scrape = isolated_app.test_client().get(
                "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            page = console.page("/ops/").text
    finally:
        isolated_app.extensions["gigco_metrics_database"].ttl = CACHE_SECONDS
    assert seen
    for sql, params in seen:
        nodes = plan(session, sql, params)
        assert not seq_scans(nodes, "jobs") and not seq_scans(nodes, "job_events"), (sql, nodes)
        # Nor a full read over an index: jobs are read only through the deadline indexes
        # (the overdue counts, whose cost grows with what is overdue), events not at all.
        read = [n for n in nodes if " jobs " in n or " job_events " in n]
        # The overrunning jobs are in progress ones: the overrun index, or the status index
        # when the in-progress jobs are as few as here (both read only those).
        allowed = DEADLINE_INDEXES | (OVERRUN_INDEXES if "overrun_flagged_at" in sql else set())
        assert all(allowed.intersection(n.split()) for n in read), (sql, nodes)
    assert f'gigco_jobs{{status="closed"}} {float(ROWS)}' in scrape.text
    assert f'gigco_job_events_total{{type="note"}} {float(ROWS)}' in scrape.text
    assert f'data-status="closed">{ROWS}</span>' in page  # exact, not "10000+"


def test_counters_stay_exact_through_a_lifecycle_and_a_cancel(api: Api, engine: sa.Engine) -> None:
    closed_job(api)
    consumer = api.consumer()
    cancelled = api.post_job(consumer)["id"]
    api.wait_status(cancelled, "offered")
    assert api.signal(cancelled, "cancel", consumer).status_code == 200
    with Session(engine) as session:
        statuses, kinds = jobs_per_status(session), events_per_kind(session)
    assert statuses[S.CLOSED] == 1 and statuses[S.CANCELLED] == 1
    assert sum(statuses.values()) == 2
    assert kinds[("cancelled", S.OFFERED, S.CANCELLED)] == 1
    assert kinds[("created", None, S.DRAFT)] == 2
    assert_exact(engine)


THREADS = 6
JOBS = 8 * SHARDS


def test_counters_stay_exact_when_transitions_race(
    engine: sa.Engine, sessions: sessionmaker[Session], committed: None
) -> None:
    with sessions.begin() as session:
        ids = [j.id for j in f.jobs(session, JOBS)]
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    won: list[tuple[int, S]] = []

    def race(seed: int) -> None:
        """Every thread tries every job, in its own order: price and offer it in one
        transaction, then cancel it or let it expire. Compare-and-set lets one win each."""
        order = random.Random(seed).sample(ids, len(ids))
        end = S.CANCELLED if seed % 2 else S.EXPIRED
        try:
            start.wait(timeout=30)
            for job_id in order:
                with sessions.begin() as s:
                    if transition(s, job_id, S.DRAFT, S.PRICED, actor=SYSTEM, then=Next.nothing()):
                        transition(
                            s, job_id, S.PRICED, S.OFFERED, actor=SYSTEM, then=Next.nothing()
                        )
                with sessions.begin() as s:
                    if transition(s, job_id, S.OFFERED, end, actor=SYSTEM, then=Next.nothing()):
                        won.append((job_id, end))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(won) == JOBS
    with Session(engine) as session:
        statuses, kinds = jobs_per_status(session), events_per_kind(session)
    ended = {end: sum(1 for _, e in won if e == end) for end in (S.CANCELLED, S.EXPIRED)}
    assert statuses == {s: ended.get(s, 0) for s in S}
    assert kinds[("priced", S.DRAFT, S.PRICED)] == JOBS
    assert_exact(engine)


def test_the_embedded_sqlite_database_keeps_the_counters_too(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'gigco.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            a, b = f.jobs(session, 2)
            transition(session, a.id, S.DRAFT, S.PRICED, actor=SYSTEM, then=Next.nothing())
            transition(session, b.id, S.DRAFT, S.CANCELLED, actor=SYSTEM, then=Next.nothing())
            session.delete(session.get(Job, b.id))
            session.flush()
            assert jobs_per_status(session)[S.PRICED] == 1
            assert sum(jobs_per_status(session).values()) == 1
            assert events_per_kind(session)[("priced", S.DRAFT, S.PRICED)] == 1
            assert jobs_per_status(session) == counted_from_tables(session)[0]
    finally:
        engine.dispose()
