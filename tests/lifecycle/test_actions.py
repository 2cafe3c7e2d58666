"""People's actions as plain functions: the right party, the right status, or a clear no."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle import actions
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.errors import Conflict, Forbidden, NotFound
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.steps import run_step
from gigco.lifecycle.transitions import CANCELLABLE, StatusConflict
from gigco.models import (
    Consumer,
    Job,
    JobEvent,
    JobStatus,
    Notification,
    Opportunity,
    OpportunityStatus,
    Review,
    Role,
)
from tests import factories as f

S = JobStatus


@pytest.fixture
def ctx(settings: Settings) -> StepContext:
    return StepContext(settings=settings, now=clock.now())


def as_consumer(job: Job) -> Principal:
    return Principal(Role.CONSUMER, job.consumer_id)


@pytest.mark.parametrize("status", sorted(CANCELLABLE))
def test_consumer_cancels_from_every_cancellable_state(
    session: Session, ctx: StepContext, status: JobStatus
) -> None:
    assigned = f.worker(session)
    holder = f.worker(session)
    job = f.job(
        session,
        status=status,
        worker_id=assigned.id if status in (S.WORKER_ASSIGNED, S.SCHEDULED) else None,
    )
    if status == S.ACCEPTED:
        f.opportunity(session, job, holder, expires_at=ctx.now + dt.timedelta(minutes=5))
    cancelled, dues = actions.cancel(session, job.id, as_consumer(job), ctx)
    assert (cancelled.status, dues) == (S.CANCELLED, [])
    event = session.scalars(sa.select(JobEvent).where(JobEvent.job_id == job.id)).one()
    assert (event.from_status, event.to_status, event.actor) == (
        status,
        S.CANCELLED,
        f"consumer:{job.consumer_id}",
    )
    told = set(
        session.scalars(
            sa.select(Notification.worker_id).where(
                Notification.job_id == job.id,
                Notification.kind == "cancellation",
                Notification.worker_id.is_not(None),
            )
        )
    )
    if status == S.ACCEPTED:
        assert told == {holder.id}
        opp = session.scalars(sa.select(Opportunity).where(Opportunity.job_id == job.id)).one()
        assert opp.status == OpportunityStatus.WITHDRAWN
    elif status in (S.WORKER_ASSIGNED, S.SCHEDULED):
        assert told == {assigned.id}
    else:
        assert told == set()


@pytest.mark.parametrize("status", sorted(set(S) - CANCELLABLE))
def test_cancel_elsewhere_is_a_conflict_naming_the_status(
    session: Session, ctx: StepContext, status: JobStatus
) -> None:
    job = f.job(session, status=status)
    with pytest.raises(StatusConflict) as raised:
        actions.cancel(session, job.id, as_consumer(job), ctx)
    assert raised.value.extra["current_status"] == status.value
    assert status.value in raised.value.message


def test_only_the_jobs_consumer_may_accept_and_others_do_not_see_it(
    session: Session, ctx: StepContext
) -> None:
    job = f.job(session, status=S.OFFERED, offer_expires_at=ctx.now + dt.timedelta(hours=1))
    stranger = f.consumer(session)
    bystander = f.worker(session)
    with pytest.raises(NotFound):
        actions.accept_offer(session, job.id, Principal(Role.CONSUMER, stranger.id), ctx)
    with pytest.raises(NotFound):
        actions.accept_offer(session, job.id, Principal(Role.WORKER, bystander.id), ctx)
    with pytest.raises(Forbidden):
        actions.accept_offer(session, job.id, Principal(Role.OPERATOR), ctx)
    accepted, _ = actions.accept_offer(session, job.id, as_consumer(job), ctx)
    assert accepted.status == S.ACCEPTED


def test_an_expired_offer_cannot_be_accepted(session: Session, ctx: StepContext) -> None:
    job = f.job(session, status=S.OFFERED, offer_expires_at=ctx.now)
    with pytest.raises(StatusConflict):
        actions.accept_offer(session, job.id, as_consumer(job), ctx)


def test_reviews_once_per_side_only_in_review_pending(session: Session, ctx: StepContext) -> None:
    w = f.worker(session)
    job = f.job(session, status=S.PAID, worker_id=w.id)
    consumer_p, worker_p = as_consumer(job), Principal(Role.WORKER, w.id)
    with pytest.raises(StatusConflict):
        actions.submit_review(session, job.id, consumer_p, ctx, rating=5, comment=None)
    session.execute(
        sa.update(Job)
        .where(Job.id == job.id)
        .values(status=S.REVIEW_PENDING, review_deadline=ctx.now + dt.timedelta(days=1))
    )
    _, dues = actions.submit_review(session, job.id, consumer_p, ctx, rating=4, comment="ok")
    assert dues == []
    with pytest.raises(Conflict):
        actions.submit_review(session, job.id, consumer_p, ctx, rating=5, comment=None)
    with pytest.raises(NotFound):
        actions.submit_review(
            session,
            job.id,
            Principal(Role.WORKER, f.worker(session).id),
            ctx,
            rating=5,
            comment=None,
        )
    _, dues = actions.submit_review(session, job.id, worker_p, ctx, rating=2, comment=None)
    assert [d.step.value for d in dues] == ["close_job"]
    session.refresh(w)
    assert (w.rating_sum, w.rating_count) == (4, 1)


def test_a_review_after_the_deadline_is_a_conflict_before_close_job_runs(
    session: Session, settings: Settings
) -> None:
    w = f.worker(session)
    job = f.job(session, status=S.PAID, worker_id=w.id)
    window = dataclasses.replace(settings, review_window_seconds=2)
    opened = StepContext(settings=window, now=clock.now())
    run_step(session, Step.REQUEST_REVIEWS, job.id, opened)
    deadline = opened.after(2)
    in_time = StepContext(settings=window, now=deadline - dt.timedelta(microseconds=1))
    actions.submit_review(session, job.id, as_consumer(job), in_time, rating=5, comment=None)
    late = StepContext(settings=window, now=deadline)
    with pytest.raises(Conflict) as raised:
        actions.submit_review(
            session, job.id, Principal(Role.WORKER, w.id), late, rating=1, comment=None
        )
    assert raised.value.extra["current_status"] == S.REVIEW_PENDING.value
    assert "review window" in raised.value.message and deadline.isoformat() in raised.value.message
    session.refresh(job)
    assert job.status == S.REVIEW_PENDING  # close_job has not run: the guard alone refused
    consumer = session.get(Consumer, job.consumer_id)
    assert consumer is not None and (consumer.rating_sum, consumer.rating_count) == (0, 0)
    assert session.scalar(sa.select(sa.func.count()).where(Review.job_id == job.id)) == 1
