"""Test clocks: a sandbox's simulated time (the Stripe convention), owned by one party.

A job created on a clock runs on the clock's ``frozen_time`` instead of the database's
clock: every step and action on it is judged at that time, the real sweeps never fire it
(``gigco.lifecycle.timers.REAL_TIME``), and advancing the clock runs its jobs' deadlines up
to the new time in due order, each at its own deadline, as real time would
(``next_deadline`` / ``due_at``, driven by ``gigco.tasks.test_clocks``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.actions import cancel_job
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.errors import Conflict, Invalid, NotFound
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.schedule import STEP_FOR_STATUS, Step
from gigco.lifecycle.transitions import CANCELLABLE
from gigco.models import Dispute, Job, TestClock

# How far a clock may be set or advanced ahead of where it stands (Stripe's limit too).
MAX_AHEAD = dt.timedelta(days=730)


def create_test_clock(
    session: Session,
    who: Principal,
    *,
    frozen_time: dt.datetime,
    name: str | None,
    now: dt.datetime,
) -> TestClock:
    """A new clock of ``who``'s standing at ``frozen_time`` (within two years of now)."""
    if abs(frozen_time - now) > MAX_AHEAD:
        raise Invalid(
            "frozen_time must be within two years of now.",
            errors={"frozen_time": ["must be within two years of now"]},
        )
    test_clock = TestClock(owner=who.actor, name=name, frozen_time=frozen_time, created_at=now)
    session.add(test_clock)
    session.flush()
    return test_clock


def owned_test_clock(
    session: Session, who: Principal, clock_id: int, *, lock: bool = False
) -> TestClock:
    """``who``'s clock ``clock_id``; NotFound for a deleted clock or anyone else's."""
    query = sa.select(TestClock).where(
        TestClock.id == clock_id, TestClock.owner == who.actor, TestClock.deleted_at.is_(None)
    )
    found = session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound(f"Test clock {clock_id} not found.")
    return found


def list_test_clocks(session: Session, who: Principal) -> list[TestClock]:
    """``who``'s clocks, oldest first."""
    return list(
        session.scalars(
            sa.select(TestClock)
            .where(TestClock.owner == who.actor, TestClock.deleted_at.is_(None))
            .order_by(TestClock.id)
            .limit(1000)
        )
    )


def delete_test_clock(
    session: Session, who: Principal, clock_id: int, ctx: StepContext
) -> list[int]:
    """Delete ``who``'s clock: its open (cancellable) jobs are cancelled at the clock's time;
    the row stays (``deleted_at``) so that its jobs never fall back to real time. Returns
    the jobs cancelled."""
    test_clock = owned_test_clock(session, who, clock_id, lock=True)
    at = StepContext(settings=ctx.settings, gateway=ctx.gateway, now=test_clock.frozen_time)
    open_jobs = session.scalars(
        sa.select(Job.id).where(Job.test_clock_id == clock_id, Job.status.in_(CANCELLABLE))
    ).all()
    for job_id in open_jobs:
        cancel_job(session, job_id, actor=who.actor, by="the deletion of its test clock", ctx=at)
    test_clock.deleted_at = ctx.now
    session.flush()
    return list(open_jobs)


def request_advance(
    session: Session, who: Principal, clock_id: int, *, to: dt.datetime
) -> TestClock:
    """Start moving ``who``'s clock to ``to`` (later than it stands, at most two years on);
    the advance itself runs in ``gigco.tasks.test_clocks``. Conflict while one is under way."""
    test_clock = owned_test_clock(session, who, clock_id, lock=True)
    if test_clock.advance_to is not None:
        raise Conflict(f"Test clock {clock_id} is already advancing; wait until it is ready.")
    if to <= test_clock.frozen_time:
        raise Invalid(
            "frozen_time must be later than the clock's current time.",
            errors={"frozen_time": [f"must be after {test_clock.frozen_time.isoformat()}"]},
        )
    if to - test_clock.frozen_time > MAX_AHEAD:
        raise Invalid(
            "A test clock advances at most two years at a time.",
            errors={"frozen_time": ["must be at most two years after the clock's time"]},
        )
    test_clock.advance_to = to
    session.flush()
    return test_clock


def clock_for_new_job(session: Session, who: Principal, clock_id: int) -> TestClock:
    """The clock a consumer posts a job on: their own, ready; 422 otherwise (a job field)."""
    try:
        return owned_test_clock(session, who, clock_id)
    except NotFound:
        raise Invalid(
            f"Test clock {clock_id} not found.",
            errors={"test_clock": ["no test clock of yours has this id"]},
        ) from None


def job_time(session: Session, job_id: int) -> dt.datetime | None:
    """The time of job ``job_id``'s test clock; None for a job on real time (or none)."""
    return session.scalar(
        sa.select(TestClock.frozen_time)
        .join(Job, Job.test_clock_id == TestClock.id)
        .where(Job.id == job_id)
    )


def dispute_time(session: Session, dispute_id: int) -> dt.datetime | None:
    """The time of the test clock of dispute ``dispute_id``'s job; None on real time."""
    return session.scalar(
        sa.select(TestClock.frozen_time)
        .join(Job, Job.test_clock_id == TestClock.id)
        .join(Dispute, Dispute.job_id == Job.id)
        .where(Dispute.id == dispute_id)
    )


def next_deadline(
    session: Session, clock_id: int, after: dt.datetime, until: dt.datetime
) -> dt.datetime | None:
    """The earliest deadline of the clock's jobs after ``after`` and at or before ``until``.
    Reads ``ix_jobs_test_clock_timer``."""
    return session.scalar(
        sa.select(sa.func.min(Job.timer_at)).where(
            Job.test_clock_id == clock_id, Job.timer_at > after, Job.timer_at <= until
        )
    )


def due_at(
    session: Session, clock_id: int, at: dt.datetime, *, skip: set[int], limit: int
) -> list[tuple[Step, int]]:
    """Up to ``limit`` steps of the clock's jobs due at ``at`` (its time now), earliest first:
    deadlines passed, and steps due at once (an action just made one due); jobs in ``skip``
    (already run at this time) are left out."""
    rows = session.execute(
        sa.select(Job.id, Job.status)
        .where(
            Job.test_clock_id == clock_id,
            Job.status.in_(list(STEP_FOR_STATUS)),
            sa.or_(Job.step_due_at.is_not(None), Job.timer_at <= at),
            Job.id.not_in(skip) if skip else sa.true(),
        )
        .order_by(sa.func.coalesce(Job.step_due_at, Job.timer_at), Job.id)
        .limit(limit)
    ).all()
    return [(STEP_FOR_STATUS[status], job_id) for job_id, status in rows]
