"""The system's steps: plain functions over a Session that return what is due next.

Each step re-reads the job and does nothing when the world has moved on, so running it
late, twice or concurrently changes nothing the second time. Timer steps never act early:
called before their deadline, they only return the deadline again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.cancel_fees import charge_late_cancel_fee
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.history import record_event
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.matching import match_job, record_strike
from gigco.lifecycle.notify import notify, notify_consumer, to_consumer, to_worker
from gigco.lifecycle.payments import process_payment
from gigco.lifecycle.policies import Policy, newest_loaded
from gigco.lifecycle.pricing import price_for
from gigco.lifecycle.principals import SYSTEM
from gigco.lifecycle.schedule import Next, Step, expected_end
from gigco.lifecycle.transitions import AT_NOW, Due, dues_of, set_next, transition
from gigco.models import Job, JobStatus, Review, Worker

S = JobStatus
_OFFER_LAPSED = Job.offer_expires_at <= AT_NOW
_ON_GUESSED_POLICY = Job.policy_version == sa.bindparam(
    "policy_guess", type_=Job.__table__.c.policy_version.type
)


def _to_policy_deadline(
    session: Session,
    job_id: int,
    ctx: StepContext,
    moves: tuple[JobStatus, JobStatus],
    column: str,
    seconds: Callable[[Policy], float],
) -> Job | None:
    """Move job ``job_id`` along ``moves`` with its deadline ``column`` (recorded on the
    event too) set ``seconds(policy)`` from now, on the job's policy read only when needed:
    the move first assumes the newest policy this process has loaded (``newest_loaded``,
    the policy of most jobs in flight), checked by the compare-and-set itself; on a miss the
    job's own policy is read and the move made on it. None when the job had moved on."""

    def move(policy: Policy, guessed: bool) -> Job | None:
        at = ctx.after(seconds(policy))
        return transition(
            session,
            job_id,
            *moves,
            actor=SYSTEM,
            then=Next.at(at),
            now=ctx.now,
            data={column: at.isoformat()},
            values={column: at},
            where=(_ON_GUESSED_POLICY,) if guessed else (),
            where_params={"policy_guess": policy.version} if guessed else None,
        )

    held = session.identity_map.get(Session.identity_key(Job, job_id)) is not None
    guess = None if held else newest_loaded(session)
    if guess is not None and (moved := move(guess, True)) is not None:
        return moved
    policy = ctx.policy(session, job_id)
    if guess is not None and policy.version == guess.version:
        return None  # the guess was right: the job was elsewhere (a lost race)
    return move(policy, False)


def price_job(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """draft → priced: subtotal = rate × hours, plus the fee; both from the job's policy."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is not None and job.status == S.PRICED and job.step_due_at is not None:
        return dues_of(job)  # a repeat: the offer is still to be sent
    if job is None or job.status != S.DRAFT:
        return []
    policy = ctx.policy(session, job_id)
    price = price_for(policy.rate_for(job.category), job.estimated_hours, policy.fee_rate)
    moved = transition(
        session,
        job_id,
        S.DRAFT,
        S.PRICED,
        actor=SYSTEM,
        then=Next.now(),
        now=ctx.now,
        data={
            "subtotal_cents": price.subtotal_cents,
            "fee_cents": price.fee_cents,
            "price_cents": price.price_cents,
        },
        values={
            "subtotal_cents": price.subtotal_cents,
            "fee_cents": price.fee_cents,
            "price_cents": price.price_cents,
        },
    )
    return dues_of(moved)


def send_offer(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """priced → offered: tell the consumer the price; the offer expires after the policy's
    offer window."""
    job = _to_policy_deadline(
        session, job_id, ctx, (S.PRICED, S.OFFERED), "offer_expires_at",
        lambda policy: policy.offer_ttl_seconds,
    )  # fmt: skip
    if job is None or job.offer_expires_at is None:
        return []
    expires = job.offer_expires_at
    notify_consumer(
        session,
        job.consumer_id,
        "offer",
        f"Your job '{job.title}' costs {(job.price_cents or 0) / 100:.2f} {job.currency}; "
        f"accept before {expires.isoformat()}.",
        job_id=job_id,
        price_cents=job.price_cents,
        offer_expires_at=expires.isoformat(),
    )
    return dues_of(job)


def expire_offer(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """offered → expired once the offer deadline has passed (never before)."""
    job = lock_job(session, job_id)  # the task locked it already: no round trip
    if job is None or job.status != S.OFFERED or job.offer_expires_at is None:
        return []
    if job.offer_expires_at > ctx.now:
        return dues_of(job)  # not yet: the offer's deadline stands
    moved = transition(
        session,
        job_id,
        S.OFFERED,
        S.EXPIRED,
        actor=SYSTEM,
        then=Next.nothing(),
        now=ctx.now,
        where=(_OFFER_LAPSED,),
        data={"late_by_seconds": (ctx.now - job.offer_expires_at).total_seconds()},
    )
    if moved:
        notify_consumer(
            session,
            job.consumer_id,
            "expiry",
            f"Your offer for '{job.title}' expired.",
            job_id=job_id,
        )
    return []


def _start_deadline(
    job: Job, grace_seconds: float | None, scheduled_at: dt.datetime
) -> dt.datetime | None:
    """When a scheduled ``job`` not yet started is a no-show (None: its policy has none):
    the start grace after ``scheduled_start`` — or after ``scheduled_at``, for a worker
    assigned only after the start (a job matched again late), who could not be there."""
    if grace_seconds is None:
        return None
    return max(job.scheduled_start, scheduled_at) + dt.timedelta(seconds=grace_seconds)


def schedule_job(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """worker_assigned → scheduled: tell both parties who comes when; the no-show deadline
    (scheduled_start + the policy's start grace) is the scheduled status's deadline."""
    job = session.get(Job, job_id)
    if job is None:
        return []
    deadline = _start_deadline(job, ctx.policy(session, job_id).start_grace_seconds, ctx.now)
    job = transition(
        session,
        job_id,
        S.WORKER_ASSIGNED,
        S.SCHEDULED,
        actor=SYSTEM,
        then=Next.nothing() if deadline is None else Next.at(deadline),
        now=ctx.now,
    )
    if job is None or job.worker_id is None:
        return []
    when = job.scheduled_start.isoformat()
    notify(
        session,
        to_consumer(
            job.consumer_id,
            "schedule",
            f"'{job.title}' is scheduled for {when}.",
            job_id=job_id,
            worker_id=job.worker_id,
            scheduled_start=when,
        ),
        to_worker(
            job.worker_id,
            "schedule",
            f"You are scheduled for '{job.title}' at {when}.",
            job_id=job_id,
            scheduled_start=when,
        ),
    )
    return dues_of(job)


def mark_no_show(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """scheduled → accepted once the start grace has passed without a start (never before):
    ``worker_no_show`` recorded, the consumer told, the no-show counted on the worker, and a
    new matching round at once (the worker held an opportunity, so it passes them by)."""
    job = lock_job(session, job_id)  # the task locked it already: no round trip
    if job is None or job.status != S.SCHEDULED or job.worker_id is None:
        return []
    grace = ctx.policy(session, job_id).start_grace_seconds
    if grace is None:
        return set_next(job, Next.nothing(), ctx.now)  # its policy waits for the worker
    # The deadline schedule_job set (a re-kick keeps it); without one, the start's.
    deadline = job.timer_at or _start_deadline(job, grace, job.scheduled_start)
    assert deadline is not None
    if deadline > ctx.now:
        return set_next(job, Next.at(deadline), ctx.now)  # not yet: the deadline stands
    worker_id = job.worker_id
    moved = transition(
        session,
        job_id,
        S.SCHEDULED,
        S.ACCEPTED,
        actor=SYSTEM,
        event="worker_no_show",
        then=Next.now(),
        now=ctx.now,
        data={"worker_id": worker_id, "late_by_seconds": (ctx.now - deadline).total_seconds()},
        values={"worker_id": None, "match_round": 0},
    )
    if moved is None:
        return []
    notify(
        session,
        to_consumer(
            moved.consumer_id,
            "no_show",
            f"The worker for '{moved.title}' did not come; we are finding another.",
            job_id=job_id,
        ),
        to_worker(
            worker_id,
            "no_show",
            f"You did not start '{moved.title}' in time; it goes to another worker.",
            job_id=job_id,
        ),
    )
    record_strike(session, worker_id=worker_id, job_id=job_id, kind="no_show", now=ctx.now)
    # Last: the worker's row is shared by all their jobs (held only until the commit).
    session.execute(
        sa.update(Worker)
        .where(Worker.id == worker_id)
        .values(no_shows=Worker.no_shows + 1)
        .execution_options(synchronize_session=False)
    )
    return dues_of(moved)


def flag_overrun(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """Work in progress past its expected end: ``overrun_flagged`` once, the consumer told;
    the job stays in progress (its deadline cleared: nothing more is due until complete)."""
    job = lock_job(session, job_id)  # the task locked it already: no round trip
    if job is None or job.status != S.IN_PROGRESS or job.overrun_flagged_at is not None:
        return []
    end = job.timer_at or expected_end(job, ctx.policy(session, job_id).overrun_factor)
    if end is None:
        return []  # its policy never flags
    if end > ctx.now:
        return set_next(job, Next.at(end), ctx.now)  # not yet: the deadline stands
    set_next(job, Next.nothing(), ctx.now)
    job.overrun_flagged_at = ctx.now
    session.flush()
    record_event(
        session,
        job_id,
        "overrun_flagged",
        actor=SYSTEM,
        now=ctx.now,
        data={"expected_end": end.isoformat(), "late_by_seconds": (ctx.now - end).total_seconds()},
    )
    notify_consumer(
        session,
        job.consumer_id,
        "overrun",
        f"'{job.title}' is taking longer than expected (due to end by {end.isoformat()}).",
        job_id=job_id,
        expected_end=end.isoformat(),
    )
    return []


def request_reviews(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """paid → review_pending: ask both sides; the window closes after the policy's review
    window."""
    job = _to_policy_deadline(
        session, job_id, ctx, (S.PAID, S.REVIEW_PENDING), "review_deadline",
        lambda policy: policy.review_window_seconds,
    )  # fmt: skip
    if job is None or job.review_deadline is None:
        return []
    deadline = job.review_deadline
    message = f"How did '{job.title}' go? Review before {deadline.isoformat()}."
    notify(session, *_to_both(job, "review_request", message))
    return dues_of(job)


def close_job(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """review_pending → closed once both reviews are in or the deadline has passed."""
    job = lock_job(session, job_id)  # the task locked it already: no round trip
    if job is None or job.status != S.REVIEW_PENDING or job.review_deadline is None:
        return []
    reviews = session.scalar(sa.select(sa.func.count()).where(Review.job_id == job_id)) or 0
    if reviews < 2 and job.review_deadline > ctx.now:
        return dues_of(job)  # not yet: the review window's deadline stands
    moved = transition(
        session,
        job_id,
        S.REVIEW_PENDING,
        S.CLOSED,
        actor=SYSTEM,
        then=Next.nothing(),
        now=ctx.now,
        data={"reviews": reviews},
    )
    if moved:
        message = f"'{job.title}' is closed. Thank you!"
        notify(session, *_to_both(job, "closure", message))
    return []


def _to_both(job: Job, kind: str, message: str) -> list[dict[str, Any]]:
    """The same notification for the job's consumer and its worker (if it has one)."""
    rows = [to_consumer(job.consumer_id, kind, message, job_id=job.id)]
    if job.worker_id is not None:
        rows.append(to_worker(job.worker_id, kind, message, job_id=job.id))
    return rows


STEPS: dict[Step, Callable[[Session, int, StepContext], list[Due]]] = {
    Step.PRICE: price_job,
    Step.SEND_OFFER: send_offer,
    Step.EXPIRE_OFFER: expire_offer,
    Step.MATCH: match_job,
    Step.SCHEDULE: schedule_job,
    Step.NO_SHOW: mark_no_show,
    Step.OVERRUN: flag_overrun,
    Step.PAY: process_payment,
    Step.REQUEST_REVIEWS: request_reviews,
    Step.CLOSE: close_job,
    Step.LATE_CANCEL_FEE: charge_late_cancel_fee,
}


def run_step(session: Session, step: Step, job_id: int, ctx: StepContext) -> list[Due]:
    """Run ``step`` on job ``job_id``; flushes, never commits."""
    dues = STEPS[step](session, job_id, ctx)
    session.flush()
    return dues
