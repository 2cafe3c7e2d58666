"""The actions: what consumers, workers and the operator do to a job, each a compare-and-set.

Every function checks the caller (visibility, then party), changes the job or raises,
and returns the job with whatever step is now due; the caller commits and then enqueues.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import built_once
from gigco.lifecycle import cancel_fees, policies
from gigco.lifecycle.access import (
    require_assigned_worker,
    require_consumer_of,
    require_operator,
    visible_job,
)
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.errors import Conflict, Forbidden, Invalid, NotFound
from gigco.lifecycle.history import record_event
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.matching import (
    answer_all_pending,
    answer_opportunity,
    busy_clash,
    close_opportunity,
    record_strike,
)
from gigco.lifecycle.notify import notify, to_consumer, to_worker
from gigco.lifecycle.principals import Principal, consumer_actor
from gigco.lifecycle.schedule import Next, expected_end
from gigco.lifecycle.transitions import (
    AT_NOW,
    CANCELLABLE,
    TERMINAL,
    Due,
    StatusConflict,
    dues_of,
    require_transition,
    set_next,
)
from gigco.models import (
    Consumer,
    Job,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Payment,
    PaymentStatus,
    Review,
    Role,
    Worker,
)

S = JobStatus
Outcome = tuple[Job, list[Due]]
_OFFER_OPEN = Job.offer_expires_at > AT_NOW


def accept_offer(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """offered → accepted, while the offer has not expired; matching starts."""
    require_consumer_of(visible_job(session, job_id, who), who)
    job = require_transition(
        session,
        job_id,
        S.OFFERED,
        S.ACCEPTED,
        wanted="accepting the offer",
        actor=who.actor,
        then=Next.now(),
        now=ctx.now,
        where=(_OFFER_OPEN,),
        values={"match_round": 0},
    )
    return job, dues_of(job)


def reject_offer(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """offered → rejected."""
    require_consumer_of(visible_job(session, job_id, who), who)
    job = require_transition(
        session,
        job_id,
        S.OFFERED,
        S.REJECTED,
        wanted="rejecting the offer",
        actor=who.actor,
        then=Next.nothing(),
        now=ctx.now,
    )
    return job, []


def cancel(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """→ cancelled from any cancellable state; withdraws a pending opportunity. Late (a worker
    assigned, the start within the policy's window) it costs the late-cancellation fee, charged
    by the step it makes due (``gigco.lifecycle.cancel_fees``)."""
    require_consumer_of(visible_job(session, job_id, who), who)
    return cancel_job(session, job_id, actor=who.actor, by="the consumer", ctx=ctx)


def cancel_job(
    session: Session,
    job_id: int,
    *,
    actor: str,
    by: str,
    ctx: StepContext,
    data: dict[str, Any] | None = None,
) -> Outcome:
    """Cancel a job already authorised for ``actor``; tells the parties it was ``by`` whom.

    Only the consumer's own cancel can cost the late-cancellation fee (an operator's never):
    the fee is on the ``cancelled`` event and a pending payment, and its charge is due now.
    """
    current = lock_job(session, job_id)
    if current is None:
        raise NotFound(f"Job {job_id} not found.")
    if current.status not in CANCELLABLE:
        raise StatusConflict(job_id, current.status, "cancelling")
    mine = actor == consumer_actor(current.consumer_id)
    fee = cancel_fees.late_fee_cents(current, ctx.policy(session, job_id), ctx.now) if mine else 0
    job = require_transition(
        session,
        job_id,
        current.status,
        S.CANCELLED,
        wanted="cancelling",
        actor=actor,
        then=Next.now() if fee else Next.nothing(),
        now=ctx.now,
        data={**(data or {}), **({"late_cancel_fee_cents": fee} if fee else {})},
        values={"payment_attempts": 0} if fee else None,
    )
    if fee:
        cancel_fees.open_fee(session, job, fee, ctx.now)
    withdrawn = answer_all_pending(session, job_id, OpportunityStatus.WITHDRAWN, ctx.now)
    message = f"'{job.title}' was cancelled by {by}."
    money = f"{fee / 100:.2f} {job.currency}"
    extra: dict[str, Any] = {"late_cancel_fee_cents": fee} if fee else {}
    assigned = job.worker_id
    notify(
        session,
        *(
            to_worker(worker_id, "cancellation", message, job_id=job_id)
            for worker_id in set(withdrawn) - {assigned}
        ),
        *(
            [
                to_worker(
                    assigned,
                    "cancellation",
                    f"{message} You earn its late-cancellation fee of {money}." if fee else message,
                    job_id=job_id,
                    **extra,
                )
            ]
            if assigned is not None
            else []
        ),
        to_consumer(
            job.consumer_id,
            "cancellation",
            (f"You cancelled '{job.title}'." if mine else message)
            + (f" A late-cancellation fee of {money} is charged to your card." if fee else ""),
            job_id=job_id,
            **extra,
        ),
    )
    return job, dues_of(job)


def _pending_opportunity(session: Session, job_id: int, who: Principal) -> Opportunity:
    """The caller's pending opportunity on the job.

    A worker who held one that is answered or lapsed (declined it, won the job and accepts
    again, or was too late) gets 409 "no longer open", as the loser of a race to accept
    does: the request was fair when it was made, the state moved on. It says nothing about
    where the job went. Anyone else gets the job's usual 404 or 403.
    """
    if who.role == Role.WORKER:
        held = session.scalars(_held_statement(), {"job_id": job_id, "worker_id": who.id}).all()
        pending = [o for o in held if o.status == OpportunityStatus.PENDING]
        if pending:
            return pending[0]
        if held:
            raise Conflict("This opportunity is no longer open.")
    visible_job(session, job_id, who)
    if who.role != Role.WORKER:
        raise Forbidden("Only a worker holding an opportunity on this job may do that.")
    raise Forbidden("You hold no pending opportunity on this job.")


def accept_opportunity(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """accepted → worker_assigned: a compare-and-set on the job and on the opportunity."""
    opp = _pending_opportunity(session, job_id, who)
    if opp.expires_at <= ctx.now:
        raise Conflict("This opportunity has expired.", current_status=S.ACCEPTED.value)
    job = require_transition(
        session,
        job_id,
        S.ACCEPTED,
        S.WORKER_ASSIGNED,
        wanted="accepting the opportunity",
        actor=who.actor,
        then=Next.now(),
        now=ctx.now,
        data={"worker_id": who.id, "opportunity_id": opp.id},
        values={"worker_id": who.id},
    )
    taken = answer_opportunity(session, opp.id, OpportunityStatus.ACCEPTED, ctx.now, unexpired=True)
    if not taken:
        raise Conflict("This opportunity is no longer open.", current_status=S.ACCEPTED.value)
    # Lock the worker so that two overlapping jobs cannot both be taken at once.
    worker_name = session.execute(
        _lock_worker_statement(), {"worker_id": who.id, "now": ctx.now}
    ).scalar_one()
    assert who.id is not None
    clash = busy_clash(session, job, who.id)
    if clash is not None:
        raise Conflict(
            f"You already have job {clash} at that time.", current_status=S.ACCEPTED.value
        )
    notify(
        session,
        to_consumer(
            job.consumer_id,
            "assignment",
            f"{worker_name} will do '{job.title}'.",
            job_id=job_id,
            worker_id=who.id,
        ),
        to_worker(who.id, "assignment", f"You got '{job.title}'.", job_id=job_id),
    )
    return job, dues_of(job)


def decline_opportunity(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """The worker passes; the next candidate is tried at once."""
    opp = _pending_opportunity(session, job_id, who)
    job = visible_job(session, job_id, who, lock=True)
    if not close_opportunity(
        session, opp, OpportunityStatus.DECLINED, actor=who.actor, now=ctx.now
    ):
        raise Conflict("This opportunity is no longer open.", current_status=job.status.value)
    dues = set_next(job, Next.now(), ctx.now)
    session.flush()
    return job, dues


def start(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """scheduled → in_progress, by the assigned worker; the overrun deadline (the policy's
    ``expected_end``) is in_progress's deadline."""
    seen = visible_job(session, job_id, who)
    require_assigned_worker(seen, who)
    end = expected_end(seen, ctx.policy(session, job_id).overrun_factor)
    job = require_transition(
        session,
        job_id,
        S.SCHEDULED,
        S.IN_PROGRESS,
        wanted="starting",
        actor=who.actor,
        then=Next.nothing() if end is None else Next.at(end),
        now=ctx.now,
    )
    return job, dues_of(job)


WITHDRAWABLE = frozenset({S.WORKER_ASSIGNED, S.SCHEDULED})


def withdraw(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """worker_assigned or scheduled → accepted, by the assigned worker; counted on them.

    A new matching round starts at once (``match_round`` from 0, matching due now); the
    worker held an opportunity on the job, so matching never asks them again. Read under
    the job's row lock, then a compare-and-set: a cancel or a no-show racing it finds the
    job moved on, or is found so. A job whose policy predates withdrawals: 409.
    """
    job = visible_job(session, job_id, who, lock=True)
    require_assigned_worker(job, who)
    if job.status not in WITHDRAWABLE:
        raise StatusConflict(job_id, job.status, "withdrawing")
    policy = ctx.policy(session, job_id)
    if not policy.withdrawals:
        raise Conflict(
            f"Job {job_id} runs under lifecycle policy {policy.version}, which has no"
            " withdrawals; ask an operator to cancel it instead.",
            current_status=job.status.value,
        )
    job = require_transition(
        session,
        job_id,
        job.status,
        S.ACCEPTED,
        wanted="withdrawing",
        event="worker_withdrew",
        actor=who.actor,
        then=Next.now(),
        now=ctx.now,
        data={"worker_id": who.id},
        values={"worker_id": None, "match_round": 0},
    )
    notify(
        session,
        to_consumer(
            job.consumer_id,
            "withdrawal",
            f"The worker for '{job.title}' can no longer come; we are finding another.",
            job_id=job_id,
        ),
    )
    assert who.id is not None  # the assigned worker
    record_strike(session, worker_id=who.id, job_id=job_id, kind="withdrawal", now=ctx.now)
    # Last (after autoflush writes the event): the worker's row is shared by all their jobs.
    session.execute(_count_statement(Worker, "withdrawals"), {"party_id": who.id})
    return job, dues_of(job)


def complete(session: Session, job_id: int, who: Principal, ctx: StepContext) -> Outcome:
    """in_progress → completed, by the assigned worker; payment becomes due."""
    require_assigned_worker(visible_job(session, job_id, who), who)
    job = require_transition(
        session,
        job_id,
        S.IN_PROGRESS,
        S.COMPLETED,
        wanted="completing",
        actor=who.actor,
        then=Next.now(),
        now=ctx.now,
        values={"payment_attempts": 0},
    )
    # The parties' rows are shared by all their jobs: locked last (after autoflush writes the
    # event), so each lock is held only until the commit.
    session.execute(_count_completed_statement(Worker), {"party_id": job.worker_id})
    session.execute(_count_completed_statement(Consumer), {"party_id": job.consumer_id})
    return job, dues_of(job)


def retry_payment(
    session: Session, job_id: int, who: Principal, ctx: StepContext, *, reason: str | None = None
) -> Outcome:
    """payment_failed → completed for the operator; attempts start again."""
    visible_job(session, job_id, who)  # 404 before 403: existence is not revealed
    require_operator(who)
    job = require_transition(
        session,
        job_id,
        S.PAYMENT_FAILED,
        S.COMPLETED,
        wanted="retrying the payment",
        event="payment_retry",
        actor=who.actor,
        then=Next.now(),
        now=ctx.now,
        data={"reason": reason} if reason else None,
        values={"payment_attempts": 0},
    )
    session.execute(
        sa.update(Payment).where(Payment.job_id == job_id).values(status=PaymentStatus.PENDING)
    )
    return job, dues_of(job)


def upgrade_policy(
    session: Session, job_id: int, who: Principal, ctx: StepContext, *, reason: str | None = None
) -> Outcome:
    """Move the job to the current lifecycle policy (operator): deadlines already set stand,
    later ones follow the new policy. Already on it: nothing changes, no event."""
    visible_job(session, job_id, who)  # 404 before 403: existence is not revealed
    require_operator(who)
    newest = policies.current(session, ctx.settings)  # before the row lock: it may write
    job = lock_job(session, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found.")
    if job.status in TERMINAL:
        raise StatusConflict(job_id, job.status, "upgrading its policy")
    if job.policy_version == newest.version:
        return job, []
    data: dict[str, Any] = {"from_version": job.policy_version, "to_version": newest.version}
    if reason:
        data["reason"] = reason
    job.policy_version = newest.version
    session.flush()
    record_event(session, job_id, "policy_upgraded", actor=who.actor, now=ctx.now, data=data)
    return job, []


def submit_review(
    session: Session,
    job_id: int,
    who: Principal,
    ctx: StepContext,
    *,
    rating: int,
    comment: str | None,
) -> tuple[Review, list[Due]]:
    """One review per side in review_pending, before the review deadline; the job closes once
    both are in."""
    # Read under the job's lock: the status, the deadline and the other side's review are
    # then final until the commit.
    job = visible_job(session, job_id, who, lock=True)
    subject_model: type[Worker] | type[Consumer]
    if who.role == Role.CONSUMER and who.id == job.consumer_id:
        subject_model, subject_id = Worker, job.worker_id
    elif who.role == Role.WORKER and who.id == job.worker_id:
        subject_model, subject_id = Consumer, job.consumer_id
    else:
        raise Forbidden("Only the job's consumer or its assigned worker may review it.")
    if not 1 <= rating <= 5:
        raise Invalid("Rating must be from 1 to 5.", errors={"rating": ["Must be from 1 to 5."]})
    if job.status != S.REVIEW_PENDING:
        raise StatusConflict(job_id, job.status, "reviewing")
    # The deadline is part of the guard, as expiry is for offers: close_job may run late.
    if job.review_deadline is None or job.review_deadline <= ctx.now:
        closed_at = job.review_deadline.isoformat() if job.review_deadline else "unknown"
        raise Conflict(
            f"The review window of job {job_id} closed at {closed_at}; it takes no more reviews.",
            current_status=job.status.value,
        )
    # The job is locked, so the other side's review is committed (or not begun) by now.
    authors = session.scalars(_authors_statement(), {"job_id": job_id}).all()
    if who.role in authors:
        raise Conflict("You have already reviewed this job.", current_status=job.status.value)
    review = Review(
        job_id=job_id,
        author_role=who.role,
        author_id=who.id,
        rating=rating,
        comment=comment,
        created_at=ctx.now,
    )
    session.add(review)
    record_event(
        session,
        job_id,
        "review_received",
        actor=who.actor,
        now=ctx.now,
        data={"rating": rating, "author_role": who.role.value},
    )
    dues = set_next(job, Next.now(), ctx.now) if len(authors) + 1 >= 2 else []
    # Last, just before the commit (autoflush writes the review and event first): a party's
    # row is shared by all their jobs, so its lock is held only until the commit.
    session.execute(_rate_statement(subject_model), {"party_id": subject_id, "rating": rating})
    return review, dues


# --- statements every call of an action runs, built once (db.built_once) -----------------

_PARTY = sa.bindparam("party_id", type_=sa.BigInteger())


@built_once
def _held_statement() -> sa.Select[Opportunity]:
    """A worker's opportunities on a job."""
    return sa.select(Opportunity).where(
        Opportunity.job_id == sa.bindparam("job_id"),
        Opportunity.worker_id == sa.bindparam("worker_id"),
    )


@built_once
def _lock_worker_statement() -> sa.Update:
    """Touch (and so lock) a worker's row, returning their name."""
    return (
        sa.update(Worker)
        .where(Worker.id == sa.bindparam("worker_id"))
        .values(updated_at=AT_NOW)
        .returning(Worker.name)
        .execution_options(synchronize_session=False)
    )


@built_once
def _count_completed_statement(model: type[Worker] | type[Consumer]) -> sa.Update:
    """One more completed job for a worker or a consumer."""
    return (
        sa.update(model)
        .where(model.id == _PARTY)
        .values(completed_jobs=model.completed_jobs + 1)
        .execution_options(synchronize_session=False)
    )


@built_once
def _count_statement(model: type[Worker] | type[Consumer], column: str) -> sa.Update:
    """One more of a party's ``column`` (a count)."""
    counted = getattr(model, column)
    return (
        sa.update(model)
        .where(model.id == _PARTY)
        .values({column: counted + 1})
        .execution_options(synchronize_session=False)
    )


@built_once
def _authors_statement() -> sa.Select[Role]:
    """The roles that reviewed a job."""
    return sa.select(Review.author_role).where(Review.job_id == sa.bindparam("job_id"))


@built_once
def _rate_statement(model: type[Worker] | type[Consumer]) -> sa.Update:
    """A new rating for a worker or a consumer."""
    return (
        sa.update(model)
        .where(model.id == _PARTY)
        .values(
            rating_sum=model.rating_sum + sa.bindparam("rating", type_=sa.Integer()),
            rating_count=model.rating_count + 1,
        )
        .execution_options(synchronize_session=False)
    )
