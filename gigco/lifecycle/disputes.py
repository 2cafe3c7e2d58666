"""Disputes and refunds: after ``paid``, until the review deadline, the consumer may dispute
the job once; an operator resolves it with a refund from 0 to what is left of the price.

A refund splits like the price: the platform gives back its fee's share of it, rounded to
the cent (``refund × fee / price``), and the rest comes out of the worker's earnings. Both
parts are on the resolution's event, the notifications and the payment, for both parties.

The refund is taken through the gateway under its own idempotency key
(``dispute-<id>-refund``), outside any transaction, in three phases like a charge: claim
(the dispute's ``refund_due_at`` moves a lease ahead), the gateway's call, and the record —
a compare-and-set from ``pending`` to ``succeeded``, so it is recorded exactly once however
runs overlap, and the key makes every run's refund the same refund. A refund whose run died
is due again when its lease ends; the sweep re-sends it (``due_refunds``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.access import require_consumer_of, require_operator, visible_job
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.errors import Conflict, Invalid, NotFound
from gigco.lifecycle.gateway import PaymentGateway
from gigco.lifecycle.history import record_event
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.notify import notify, to_consumer, to_worker
from gigco.lifecycle.principals import SYSTEM, Principal
from gigco.lifecycle.transitions import StatusConflict
from gigco.models import (
    Dispute,
    DisputeStatus,
    Job,
    JobStatus,
    Payment,
    PaymentStatus,
    RefundStatus,
    TestClock,
)

S = JobStatus
log = logging.getLogger(__name__)

TEXT_MAX = 2000
DISPUTABLE = frozenset({S.PAID, S.REVIEW_PENDING, S.CLOSED})


def _text(value: str | None, field: str) -> str:
    """``value`` with its whitespace tidied; Invalid naming ``field`` if empty or too long."""
    text = " ".join((value or "").split())
    if not text:
        raise Invalid(f"Give a {field}.", errors={field: ["Required."]})
    if len(text) > TEXT_MAX:
        raise Invalid(
            f"A {field} has at most {TEXT_MAX} characters.",
            errors={field: [f"At most {TEXT_MAX} characters."]},
        )
    return text


def fee_share(refund_cents: int, payment: Payment) -> int:
    """The platform's part of a refund: its fee's share of the price, rounded to the cent."""
    return (refund_cents * payment.fee_cents * 2 + payment.amount_cents) // (
        2 * payment.amount_cents
    )


def _paid(session: Session, job_id: int) -> Payment | None:
    return session.scalar(
        sa.select(Payment).where(
            Payment.job_id == job_id, Payment.status == PaymentStatus.SUCCEEDED
        )
    )


def dispute_of(session: Session, job_id: int) -> Dispute | None:
    """The job's dispute, if it has one."""
    return session.scalar(sa.select(Dispute).where(Dispute.job_id == job_id))


def open_dispute(
    session: Session, job_id: int, who: Principal, ctx: StepContext, *, reason: str | None
) -> Dispute:
    """The job's consumer disputes it: once, after it was paid, before its review deadline."""
    job = visible_job(session, job_id, who, lock=True)
    require_consumer_of(job, who)
    text = _text(reason, "reason")
    payment = _paid(session, job_id)
    if job.status not in DISPUTABLE or payment is None:
        raise StatusConflict(job_id, job.status, "disputing")
    if job.review_deadline is not None and job.review_deadline <= ctx.now:
        raise Conflict(
            f"The dispute window of job {job_id} closed at {job.review_deadline.isoformat()}.",
            current_status=job.status.value,
        )
    if dispute_of(session, job_id) is not None:
        raise Conflict(f"Job {job_id} is already disputed.", current_status=job.status.value)
    dispute = Dispute(job_id=job_id, reason=text, opened_at=ctx.now)
    session.add(dispute)
    session.flush()
    record_event(
        session,
        job_id,
        "dispute_opened",
        actor=who.actor,
        now=ctx.now,
        data={"dispute_id": dispute.id, "reason": text},
    )
    parties = [
        to_consumer(
            job.consumer_id,
            "dispute_opened",
            f"We received your dispute of '{job.title}'; support will resolve it.",
            job_id=job_id,
            reason=text,
        )
    ]
    if job.worker_id is not None:
        parties.append(
            to_worker(
                job.worker_id,
                "dispute_opened",
                f"The consumer disputed '{job.title}'; support will resolve it.",
                job_id=job_id,
                reason=text,
            )
        )
    notify(session, *parties)
    return dispute


def resolve_dispute(
    session: Session,
    job_id: int,
    who: Principal,
    ctx: StepContext,
    *,
    refund_cents: int,
    note: str | None,
) -> Dispute:
    """The operator resolves the job's open dispute with a refund of 0 to the price.

    A refund above 0 is left pending: the caller sends ``take_refund`` after the commit.
    """
    job = visible_job(session, job_id, who, lock=True)
    require_operator(who)
    text = _text(note, "note")
    dispute = dispute_of(session, job_id)
    if dispute is None:
        raise NotFound(f"Job {job_id} has no dispute.")
    if dispute.status != DisputeStatus.OPEN:
        raise Conflict(
            f"The dispute of job {job_id} is already resolved.", current_status=job.status.value
        )
    payment = _paid(session, job_id)
    assert payment is not None  # a dispute is opened only on a paid job, never unpaid
    left = payment.amount_cents - payment.refunded_cents
    if not 0 <= refund_cents <= left:
        raise Invalid(
            f"A refund is from 0 to {left} cents (the price of job {job_id}).",
            errors={"refund_cents": [f"Must be from 0 to {left}."]},
        )
    fee = fee_share(refund_cents, payment)
    dispute.status, dispute.resolved_at, dispute.note = DisputeStatus.RESOLVED, ctx.now, text
    dispute.refund_cents, dispute.refund_fee_cents = refund_cents, fee
    if refund_cents:
        dispute.refund_status = RefundStatus.PENDING
        dispute.refund_key = f"dispute-{dispute.id}-refund"
        dispute.refund_due_at = ctx.now
    split = {
        "refund_cents": refund_cents,
        "refund_fee_cents": fee,
        "refund_earnings_cents": refund_cents - fee,
    }
    record_event(
        session,
        job_id,
        "dispute_resolved",
        actor=who.actor,
        now=ctx.now,
        data={"dispute_id": dispute.id, "note": text, **split},
    )
    money = f"{refund_cents / 100:.2f} {job.currency}"
    parties = [
        to_consumer(
            job.consumer_id,
            "dispute_resolved",
            f"Your dispute of '{job.title}' is resolved: a refund of {money}. {text}",
            job_id=job_id,
            note=text,
            **split,
        )
    ]
    if job.worker_id is not None:
        parties.append(
            to_worker(
                job.worker_id,
                "dispute_resolved",
                f"The dispute of '{job.title}' is resolved: {(refund_cents - fee) / 100:.2f} "
                f"{job.currency} of the {money} refund comes from your earnings. {text}",
                job_id=job_id,
                note=text,
                **split,
            )
        )
    notify(session, *parties)
    session.flush()
    return dispute


# --- taking the refund: claim, the gateway's call (no transaction open), record ----------


@dataclass(frozen=True)
class RefundClaim:
    """A pending refund claimed for one run; ``lease_until`` is on the dispute to mark it."""

    dispute_id: int
    job_id: int
    charge_id: str
    amount_cents: int
    idempotency_key: str
    lease_until: dt.datetime


def claim_refund(
    session: Session, dispute_id: int, ctx: StepContext, token: str | None = None
) -> RefundClaim | None:
    """Transaction 1: claim a pending refund that is due; None when there is nothing to do.

    Its due time moves a lease ahead (``payment_lease_seconds``), so a concurrent run waits;
    a retry of the run holding the claim (the same ``token``, a task's id) takes it at once.
    """
    dispute = session.get(Dispute, dispute_id, with_for_update=True, populate_existing=True)
    if dispute is None or dispute.refund_status != RefundStatus.PENDING:
        return None
    ours = token is not None and dispute.refund_claim_token == token
    if dispute.refund_due_at is None or (dispute.refund_due_at > ctx.now and not ours):
        return None
    dispute.refund_claim_token = token
    payment = _paid(session, dispute.job_id)
    assert payment is not None and payment.gateway_charge_id is not None
    assert dispute.refund_cents is not None and dispute.refund_key is not None
    dispute.refund_due_at = ctx.after(ctx.settings.payment_lease_seconds)
    session.flush()
    return RefundClaim(
        dispute_id=dispute.id,
        job_id=dispute.job_id,
        charge_id=payment.gateway_charge_id,
        amount_cents=dispute.refund_cents,
        idempotency_key=dispute.refund_key,
        lease_until=dispute.refund_due_at,
    )


def refund_at_gateway(gateway: PaymentGateway, claim: RefundClaim) -> str | None:
    """Call the gateway for ``claim``: the refund's id, or None when it failed (tried again
    under the same key when the lease ends)."""
    try:
        return gateway.refund(
            idempotency_key=claim.idempotency_key,
            charge_id=claim.charge_id,
            amount_cents=claim.amount_cents,
        )
    except Exception:
        log.warning("refund failed at the gateway", exc_info=True, extra={"job_id": claim.job_id})
        return None


def record_refund(session: Session, claim: RefundClaim, refund_id: str, ctx: StepContext) -> bool:
    """Transaction 2: pending → succeeded, once; the payment shows the refund, both parties
    are told. False when another run recorded it first."""
    lock_job(session, claim.job_id)  # the job first, as every writer of its history does
    moved = session.execute(
        sa.update(Dispute)
        .where(Dispute.id == claim.dispute_id, Dispute.refund_status == RefundStatus.PENDING)
        .values(
            refund_status=RefundStatus.SUCCEEDED,
            gateway_refund_id=refund_id,
            refunded_at=ctx.now,
            refund_due_at=None,
            refund_claim_token=None,
        )
        .returning(Dispute.refund_fee_cents)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if moved is None:
        return False
    fee = moved[0] or 0
    session.execute(
        sa.update(Payment)
        .where(Payment.job_id == claim.job_id)
        .values(
            refunded_cents=Payment.refunded_cents + claim.amount_cents,
            refunded_fee_cents=Payment.refunded_fee_cents + fee,
        )
        .execution_options(synchronize_session=False)
    )
    split = {
        "refund_cents": claim.amount_cents,
        "refund_fee_cents": fee,
        "refund_earnings_cents": claim.amount_cents - fee,
    }
    record_event(
        session,
        claim.job_id,
        "refunded",
        actor=SYSTEM,
        now=ctx.now,
        data={"dispute_id": claim.dispute_id, "refund_id": refund_id, **split},
    )
    job = session.get(Job, claim.job_id)
    assert job is not None
    money = f"{claim.amount_cents / 100:.2f} {job.currency}"
    parties = [
        to_consumer(
            job.consumer_id,
            "refund",
            f"{money} for '{job.title}' is on its way back to your card.",
            job_id=job.id,
            **split,
        )
    ]
    if job.worker_id is not None:
        parties.append(
            to_worker(
                job.worker_id,
                "refund",
                f"{(claim.amount_cents - fee) / 100:.2f} {job.currency} of your earnings for "
                f"'{job.title}' went back to the consumer.",
                job_id=job.id,
                **split,
            )
        )
    notify(session, *parties)
    session.flush()
    return True


def take_refund(session: Session, dispute_id: int, ctx: StepContext) -> bool:
    """The three phases in one session, for callers with nothing else in the transaction;
    the worker runs them in two transactions around the gateway's call."""
    if ctx.gateway is None:
        raise ValueError("take_refund needs a payment gateway")
    claim = claim_refund(session, dispute_id, ctx)
    if claim is None:
        return False
    refund_id = refund_at_gateway(ctx.gateway, claim)
    return refund_id is not None and record_refund(session, claim, refund_id, ctx)


def due_refunds(session: Session, now: dt.datetime, batch: int) -> list[int]:
    """Disputes whose pending refund is due (never taken, or its run's lease ran out): at
    ``now``, or for a job on a test clock at its clock's time (that refund's deadlines are
    the clock's, as every one of the job's). Reads ``ix_disputes_refund_due_at``: only the
    pending refunds."""
    due_by = sa.func.coalesce(TestClock.frozen_time, sa.literal(now, Dispute.refund_due_at.type))
    return list(
        session.scalars(
            sa.select(Dispute.id)
            .join(Job, Job.id == Dispute.job_id)
            .outerjoin(TestClock, TestClock.id == Job.test_clock_id)
            .where(Dispute.refund_due_at.is_not(None), Dispute.refund_due_at <= due_by)
            .order_by(Dispute.refund_due_at)
            .limit(batch)
        )
    )
