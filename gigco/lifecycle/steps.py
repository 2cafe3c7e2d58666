"""The system's steps: plain functions over a Session that return what is due next.

Each step re-reads the job and does nothing when the world has moved on, so running it
late, twice or concurrently changes nothing the second time. Timer steps never act early:
called before their deadline, they only return the deadline again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.config import Settings
from gigco.db import utcnow
from gigco.lifecycle import matching
from gigco.lifecycle.gateway import PaymentGateway
from gigco.lifecycle.history import SYSTEM, Due, lock_job, record_event, transition
from gigco.lifecycle.notify import notify_consumer, notify_worker
from gigco.lifecycle.pricing import price_for
from gigco.lifecycle.states import Step
from gigco.models import (
    AttemptOutcome,
    Consumer,
    Job,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    Review,
)

S = JobStatus


@dataclass(frozen=True)
class StepContext:
    """What a step needs besides the session: settings, the gateway and the time."""

    settings: Settings
    gateway: PaymentGateway | None = None
    now: dt.datetime = field(default_factory=utcnow)

    def after(self, seconds: float) -> dt.datetime:
        """``now`` plus ``seconds``."""
        return self.now + dt.timedelta(seconds=seconds)


Dues = list[Due]


def price_job(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """draft → priced: subtotal = rate × hours, fee = 10 %."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is not None and job.status == S.PRICED and job.step_due_at is not None:
        return [Due(Step.SEND_OFFER, job_id)]  # a repeat: the offer is still to be sent
    if job is None or job.status != S.DRAFT:
        return []
    price = price_for(job.category.hourly_rate_cents, job.estimated_hours)
    moved = transition(
        session,
        job_id,
        S.DRAFT,
        S.PRICED,
        actor=SYSTEM,
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
            "step_due_at": ctx.now,
        },
    )
    return [Due(Step.SEND_OFFER, job_id)] if moved else []


def send_offer(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """priced → offered: tell the consumer the price; the offer expires after OFFER_TTL."""
    expires = ctx.after(ctx.settings.offer_ttl_seconds)
    job = transition(
        session,
        job_id,
        S.PRICED,
        S.OFFERED,
        actor=SYSTEM,
        now=ctx.now,
        data={"offer_expires_at": expires.isoformat()},
        values={"offer_expires_at": expires, "timer_at": expires, "step_due_at": None},
    )
    if job is None:
        return []
    notify_consumer(
        session,
        job.consumer_id,
        "offer",
        f"Your job '{job.title}' costs {job.price_cents / 100:.2f} {job.currency}; "
        f"accept before {expires.isoformat()}.",
        job_id=job_id,
        price_cents=job.price_cents,
        offer_expires_at=expires.isoformat(),
    )
    return [Due(Step.EXPIRE_OFFER, job_id, expires)]


def expire_offer(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """offered → expired once the offer deadline has passed (never before)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.status != S.OFFERED or job.offer_expires_at is None:
        return []
    if job.offer_expires_at > ctx.now:
        return [Due(Step.EXPIRE_OFFER, job_id, job.offer_expires_at)]
    moved = transition(
        session,
        job_id,
        S.OFFERED,
        S.EXPIRED,
        actor=SYSTEM,
        now=ctx.now,
        where=[Job.offer_expires_at <= ctx.now],
        values={"timer_at": None},
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


def match_job(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """Matching: expire a lapsed opportunity, start a round, offer the next worker."""
    job = lock_job(session, job_id)
    if job is None or job.status != S.ACCEPTED:
        return []
    pending = session.scalar(
        sa.select(Opportunity).where(
            Opportunity.job_id == job_id, Opportunity.status == OpportunityStatus.PENDING
        )
    )
    if pending is not None:
        if pending.expires_at > ctx.now:
            job.step_due_at = None  # nothing to do until the opportunity expires
            return [Due(Step.MATCH, job_id, pending.expires_at)]
        _close_opportunity(session, pending, OpportunityStatus.EXPIRED, ctx)
        notify_worker(
            session,
            pending.worker_id,
            "expiry",
            f"Your opportunity on '{job.title}' expired.",
            job_id=job_id,
        )
    if job.next_match_at is not None and job.next_match_at > ctx.now:
        job.step_due_at = None
        return [Due(Step.MATCH, job_id, job.next_match_at)]
    if job.match_round == 0 or job.next_match_at is not None:
        job.match_round += 1
        job.next_match_at = None
        record_event(
            session,
            job_id,
            "matching_round_started",
            actor=SYSTEM,
            now=ctx.now,
            data={"round": job.match_round},
        )
    return _offer_next(session, job, ctx)


def _offer_next(session: Session, job: Job, ctx: StepContext) -> Dues:
    ranked = matching.candidates(session, job)
    if ranked:
        best = ranked[0]
        expires = ctx.after(ctx.settings.opportunity_ttl_seconds)
        session.add(
            Opportunity(
                job_id=job.id,
                worker_id=best.worker_id,
                round=job.match_round,
                distance_km=best.distance_km,
                offered_at=ctx.now,
                expires_at=expires,
            )
        )
        job.timer_at, job.step_due_at = expires, None
        record_event(
            session,
            job.id,
            "opportunity_offered",
            actor=SYSTEM,
            now=ctx.now,
            data={
                "worker_id": best.worker_id,
                "round": job.match_round,
                "expires_at": expires.isoformat(),
                "distance_km": round(best.distance_km, 3),
            },
        )
        notify_worker(
            session,
            best.worker_id,
            "opportunity",
            f"New job '{job.title}' near you; answer before {expires.isoformat()}.",
            job_id=job.id,
            expires_at=expires.isoformat(),
        )
        return [Due(Step.MATCH, job.id, expires)]
    if job.match_round >= ctx.settings.match_max_rounds:
        session.flush()
        moved = transition(
            session,
            job.id,
            S.ACCEPTED,
            S.NO_WORKER,
            actor=SYSTEM,
            now=ctx.now,
            data={"rounds": job.match_round},
            values={"timer_at": None, "step_due_at": None},
        )
        if moved:
            notify_consumer(
                session,
                job.consumer_id,
                "no_worker",
                f"No worker was found for '{job.title}'.",
                job_id=job.id,
            )
        return []
    next_at = ctx.after(job.match_round * ctx.settings.match_retry_base_seconds)
    job.next_match_at, job.timer_at, job.step_due_at = next_at, next_at, None
    record_event(
        session,
        job.id,
        "matching_round_ended",
        actor=SYSTEM,
        now=ctx.now,
        data={"round": job.match_round, "next_round_at": next_at.isoformat()},
    )
    return [Due(Step.MATCH, job.id, next_at)]


def _close_opportunity(
    session: Session, opp: Opportunity, status: OpportunityStatus, ctx: StepContext
) -> bool:
    closed = session.execute(
        sa.update(Opportunity)
        .where(Opportunity.id == opp.id, Opportunity.status == OpportunityStatus.PENDING)
        .values(status=status, responded_at=ctx.now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed:
        record_event(
            session,
            opp.job_id,
            f"opportunity_{status.value}",
            actor=SYSTEM,
            now=ctx.now,
            data={"worker_id": opp.worker_id, "round": opp.round},
        )
    return bool(closed)


def schedule_job(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """worker_assigned → scheduled: tell both parties who comes when."""
    job = transition(
        session,
        job_id,
        S.WORKER_ASSIGNED,
        S.SCHEDULED,
        actor=SYSTEM,
        now=ctx.now,
        values={"step_due_at": None},
    )
    if job is None or job.worker_id is None:
        return []
    when = job.scheduled_start.isoformat()
    notify_consumer(
        session,
        job.consumer_id,
        "schedule",
        f"'{job.title}' is scheduled for {when}.",
        job_id=job_id,
        worker_id=job.worker_id,
        scheduled_start=when,
    )
    notify_worker(
        session,
        job.worker_id,
        "schedule",
        f"You are scheduled for '{job.title}' at {when}.",
        job_id=job_id,
        scheduled_start=when,
    )
    return []


def process_payment(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """completed → paid, or a refused attempt with backoff, or payment_failed at the last."""
    if ctx.gateway is None:
        raise ValueError("process_payment needs a payment gateway")
    job = lock_job(session, job_id)
    if job is not None and job.status == S.PAID and job.step_due_at is not None:
        return [Due(Step.REQUEST_REVIEWS, job_id)]  # a repeat: reviews are still to be asked
    if job is None or job.status != S.COMPLETED:
        return []
    if job.next_payment_at is not None and job.next_payment_at > ctx.now:
        return [Due(Step.PAY, job_id, job.next_payment_at)]
    assert job.price_cents is not None and job.subtotal_cents is not None
    assert job.fee_cents is not None
    method = session.scalar(
        sa.select(Consumer.payment_method).where(Consumer.id == job.consumer_id)
    )
    # The gateway is called before this transaction writes anything (SQLite allows one writer),
    # and a crash after it is harmless: the next attempt replays the same idempotency key.
    result = ctx.gateway.charge(
        idempotency_key=f"job-{job_id}",
        amount_cents=job.price_cents,
        payment_method=method or "pm_card_visa",
    )
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job_id))
    if payment is None:
        payment = Payment(
            job_id=job_id,
            idempotency_key=f"job-{job_id}",
            amount_cents=job.price_cents,
            fee_cents=job.fee_cents,
            worker_earnings_cents=job.subtotal_cents,
            created_at=ctx.now,
        )
        session.add(payment)
        session.flush()
    attempt_no = 1 + (
        session.scalar(sa.select(sa.func.count()).where(PaymentAttempt.payment_id == payment.id))
        or 0
    )
    session.add(
        PaymentAttempt(
            payment_id=payment.id,
            job_id=job_id,
            number=attempt_no,
            outcome=result.outcome,
            detail=result.detail,
            attempted_at=ctx.now,
        )
    )
    job.payment_attempts += 1
    if result.outcome == AttemptOutcome.SUCCEEDED:
        payment.status, payment.gateway_charge_id = PaymentStatus.SUCCEEDED, result.charge_id
        payment.succeeded_at = ctx.now
        session.flush()
        transition(
            session,
            job_id,
            S.COMPLETED,
            S.PAID,
            actor=SYSTEM,
            now=ctx.now,
            data={
                "charge_id": result.charge_id,
                "amount_cents": payment.amount_cents,
                "attempt": attempt_no,
            },
            values={"next_payment_at": None, "timer_at": None, "step_due_at": ctx.now},
        )
        notify_consumer(
            session,
            job.consumer_id,
            "payment_receipt",
            f"You paid {payment.amount_cents / 100:.2f} {job.currency} for '{job.title}'.",
            job_id=job_id,
            amount_cents=payment.amount_cents,
        )
        if job.worker_id is not None:
            notify_worker(
                session,
                job.worker_id,
                "payment_receipt",
                f"You earned {payment.worker_earnings_cents / 100:.2f} {job.currency} "
                f"for '{job.title}'.",
                job_id=job_id,
                earnings_cents=payment.worker_earnings_cents,
            )
        return [Due(Step.REQUEST_REVIEWS, job_id)]
    record_event(
        session,
        job_id,
        "payment_attempt_refused",
        actor=SYSTEM,
        now=ctx.now,
        data={
            "attempt": job.payment_attempts,
            "outcome": result.outcome.value,
            "detail": result.detail,
        },
    )
    if job.payment_attempts >= ctx.settings.payment_max_attempts:
        payment.status = PaymentStatus.FAILED
        session.flush()
        transition(
            session,
            job_id,
            S.COMPLETED,
            S.PAYMENT_FAILED,
            actor=SYSTEM,
            now=ctx.now,
            data={"attempts": job.payment_attempts},
            values={"next_payment_at": None, "timer_at": None, "step_due_at": None},
        )
        notify_consumer(
            session,
            job.consumer_id,
            "payment_failed",
            f"We could not charge your card for '{job.title}'.",
            job_id=job_id,
        )
        return []
    delay = ctx.settings.payment_retry_base_seconds * 2 ** (job.payment_attempts - 1)
    job.next_payment_at = job.timer_at = ctx.after(delay)
    job.step_due_at = None
    return [Due(Step.PAY, job_id, job.next_payment_at)]


def request_reviews(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """paid → review_pending: ask both sides; the window closes after REVIEW_WINDOW."""
    deadline = ctx.after(ctx.settings.review_window_seconds)
    job = transition(
        session,
        job_id,
        S.PAID,
        S.REVIEW_PENDING,
        actor=SYSTEM,
        now=ctx.now,
        data={"review_deadline": deadline.isoformat()},
        values={"review_deadline": deadline, "timer_at": deadline, "step_due_at": None},
    )
    if job is None:
        return []
    message = f"How did '{job.title}' go? Review before {deadline.isoformat()}."
    notify_consumer(session, job.consumer_id, "review_request", message, job_id=job_id)
    if job.worker_id is not None:
        notify_worker(session, job.worker_id, "review_request", message, job_id=job_id)
    return [Due(Step.CLOSE, job_id, deadline)]


def close_job(session: Session, job_id: int, ctx: StepContext) -> Dues:
    """review_pending → closed once both reviews are in or the deadline has passed."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.status != S.REVIEW_PENDING or job.review_deadline is None:
        return []
    reviews = session.scalar(sa.select(sa.func.count()).where(Review.job_id == job_id)) or 0
    if reviews < 2 and job.review_deadline > ctx.now:
        return [Due(Step.CLOSE, job_id, job.review_deadline)]
    moved = transition(
        session,
        job_id,
        S.REVIEW_PENDING,
        S.CLOSED,
        actor=SYSTEM,
        now=ctx.now,
        data={"reviews": reviews},
        values={"timer_at": None, "step_due_at": None},
    )
    if moved:
        message = f"'{job.title}' is closed. Thank you!"
        notify_consumer(session, job.consumer_id, "closure", message, job_id=job_id)
        if job.worker_id is not None:
            notify_worker(session, job.worker_id, "closure", message, job_id=job_id)
    return []


STEPS: dict[Step, Callable[[Session, int, StepContext], Dues]] = {
    Step.PRICE: price_job,
    Step.SEND_OFFER: send_offer,
    Step.EXPIRE_OFFER: expire_offer,
    Step.MATCH: match_job,
    Step.SCHEDULE: schedule_job,
    Step.PAY: process_payment,
    Step.REQUEST_REVIEWS: request_reviews,
    Step.CLOSE: close_job,
}


def run_step(session: Session, step: Step, job_id: int, ctx: StepContext) -> Dues:
    """Run ``step`` on job ``job_id``; flushes, never commits."""
    dues = STEPS[step](session, job_id, ctx)
    session.flush()
    return dues
