"""Lost messages, duplicate deliveries and the sweeps' query plans."""

from __future__ import annotations

import datetime as dt

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.timers import REAL_TIME, due_timers, stuck_steps
from gigco.models import Job, JobEvent, JobStatus
from gigco.tasks import app as celery_app
from tests import factories as f
from tests.harness.http import Api
from tests.harness.polling import wait_for


def _status(sessions: sessionmaker[Session], job_id: int) -> JobStatus:
    with sessions() as s:
        return s.get(Job, job_id).status  # type: ignore[union-attr]


def test_a_step_whose_message_was_lost_is_rekicked_by_the_sweeper(
    api: Api, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # A draft job committed with no task ever sent: as if the broker lost the message.
    with sessions.begin() as s:
        job_id = f.job(s, step_due_at=clock.now()).id
    grace = settings.stuck_step_grace_seconds
    wait_for(
        lambda: _status(sessions, job_id) == JobStatus.OFFERED,
        timeout=grace + 2 * settings.sweep_interval_seconds + 2,
        what="the sweeper to re-kick pricing",
    )
    types = [e["type"] for e in api.events(job_id)]
    assert types == ["priced", "offered"]


def test_a_deadline_whose_task_was_lost_fires_on_time(
    api: Api, sessions: sessionmaker[Session], settings: Settings
) -> None:
    due = clock.now() + dt.timedelta(seconds=settings.sweep_interval_seconds + 0.5)
    with sessions.begin() as s:
        job_id = f.job(s, status=JobStatus.OFFERED, offer_expires_at=due, timer_at=due).id
    wait_for(
        lambda: _status(sessions, job_id) == JobStatus.EXPIRED,
        timeout=2 * settings.sweep_interval_seconds + 3,
        what="the offer to expire",
    )
    (expired,) = api.events(job_id)
    lateness = dt.datetime.fromisoformat(expired["created_at"]) - due
    assert dt.timedelta(0) <= lateness < dt.timedelta(seconds=1)


def _drained(broker: redis.Redis) -> bool:
    inspect = celery_app.control.inspect(timeout=0.5)
    busy = [t for tasks in (inspect.active() or {}).values() for t in tasks]
    busy += [t for tasks in (inspect.reserved() or {}).values() for t in tasks]
    return broker.llen("celery") == 0 and not busy


def test_every_step_delivered_again_changes_nothing(
    api: Api, sessions: sessionmaker[Session], settings: Settings
) -> None:
    consumer = api.consumer()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    api.signal(job_id, "offer/reject", consumer)
    before = api.events(job_id)
    for step in Step:
        for _ in range(2):
            celery_app.send_task(f"gigco.tasks.steps.{step.value}", args=[job_id])
    broker = redis.Redis.from_url(settings.broker_url)
    wait_for(lambda: _drained(broker), timeout=10, every=0.1, what="the queue to drain")
    assert api.events(job_id) == before
    assert _status(sessions, job_id) == JobStatus.REJECTED


def _plan(session: Session, stmt: sa.Executable) -> str:
    compiled = stmt.compile(session.bind, compile_kwargs={"literal_binds": True})
    return "\n".join(session.scalars(sa.text(f"EXPLAIN {compiled}")))


def test_sweeps_read_only_the_due_rows_through_their_partial_indexes(session: Session) -> None:
    owner = f.consumer(session)
    cat = f.category(session)
    now = clock.now()
    session.execute(
        sa.insert(Job),
        [
            {
                "consumer_id": owner.id,
                "category_id": cat.id,
                "title": "t",
                "lat": 0,
                "lng": 0,
                "scheduled_start": now,
                "scheduled_end": now,
                "estimated_hours": 1,
                "status": JobStatus.SCHEDULED,
                "currency": "USD",
                "match_round": 0,
                "payment_attempts": 0,
                "event_seq": 0,
                "created_at": now,
                "updated_at": now,
            }
            for _ in range(3000)
        ],
    )
    due = f.job(session, status=JobStatus.OFFERED, offer_expires_at=now, timer_at=now)
    stuck = f.job(session, step_due_at=now - dt.timedelta(hours=1))
    session.execute(sa.text("ANALYZE jobs"))
    timers = due_timers(session, now=now, horizon_seconds=1, grace_seconds=60, batch=1000)
    assert [(d.step, d.job_id) for d in timers] == [(Step.EXPIRE_OFFER, due.id)]
    rekicks = stuck_steps(session, now=now, grace_seconds=60, batch=1000)
    assert [(d.step, d.job_id) for d in rekicks] == [(Step.PRICE, stuck.id)]
    timer_plan = _plan(
        session,
        sa.select(Job.id)
        .where(Job.timer_at.is_not(None), Job.timer_at <= now)
        .order_by(Job.timer_at),
    )
    stuck_plan = _plan(
        session,
        sa.select(Job.id).where(
            Job.step_due_at.is_not(None), REAL_TIME, Job.step_due_at <= now
        ),  # as stuck_steps asks: jobs on a test clock are not swept
    )
    assert "ix_jobs_timer_at" in timer_plan and "Seq Scan" not in timer_plan, timer_plan
    assert "ix_jobs_step_due_at" in stuck_plan and "Seq Scan" not in stuck_plan, stuck_plan
    assert session.scalar(sa.select(sa.func.count()).select_from(JobEvent)) == 0
