"""Payment: the step that charges a completed job through the gateway, with backoff.

The gateway itself (the interface and the simulated processor) is ``gigco.lifecycle.gateway``.

A charge *intent* is one idempotency key, ``job-<id>-intent-<n>`` (``n``: the number of the
attempt that opened it), with one payment method and amount, kept on the payment row. An
attempt repeats the current intent while it is in doubt — claimed and never answered (the
run died), or answered with an error (a timeout, a 5xx) — since it may have taken money; an
intent answered for sure (declined) is never repeated: the next attempt (the backoff's
retry, one after an operator's retry, or with the consumer's new card) opens a new intent
with a new key and the consumer's current card. So no new intent is opened while an older
one might have charged.

An attempt's number counts every attempt on the job, 1, 2, 3 …, never reset: the attempt
row's ``number`` (the payment resource, ``/ops``), the ``attempt`` of ``paid`` and
``payment_attempt_refused``, and ``attempts`` (made so far) of ``payment_failed``. The
budget is apart: ``jobs.payment_attempts`` counts the attempts since the job last entered
``completed`` (an operator's retry starts it again); it ends the run at
``payment_max_attempts`` and sets the backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import ChargeResult, PaymentGateway
from gigco.lifecycle.history import record_event
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.notify import notify, notify_consumer, to_consumer, to_worker
from gigco.lifecycle.principals import SYSTEM
from gigco.lifecycle.schedule import Next
from gigco.lifecycle.transitions import Due, dues_of, set_next, transition
from gigco.models import (
    AttemptOutcome,
    Consumer,
    Job,
    JobStatus,
    Payment,
    PaymentAttempt,
    PaymentStatus,
)

S = JobStatus
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """One charge attempt claimed on a job: the intent it sends, and who holds the claim.

    ``lease_until`` is written to the job and ``token`` to its payment to mark the claim.
    """

    job_id: int
    lease_until: dt.datetime
    amount_cents: int
    payment_method: str
    idempotency_key: str
    token: str
    # Our name for the charge at the processor (its metadata): ``job_reference`` for the
    # price, the fee's own for a late-cancellation fee.
    reference: str


def job_reference(job_id: int) -> str:
    """The reference a job's charges carry at the processor."""
    return f"job-{job_id}"


def intent_key(job_id: int, attempt_number: int) -> str:
    """The idempotency key of the intent opened by attempt ``attempt_number`` of a job."""
    return f"job-{job_id}-intent-{attempt_number}"


def claim_payment(
    session: Session, job_id: int, ctx: StepContext, token: str | None = None
) -> Claim | list[Due]:
    """Transaction 1: claim the job's next charge attempt, or return what is due instead.

    The claim is a compare-and-set on the locked job: its payment deadline moves to the end
    of a lease, so a concurrent run (a sweep, a redelivery) finds it not yet due. ``token``
    names the run (the task's id): a retry of the same run — Celery retries a task under its
    id after its database connection died — takes its own standing claim over at once, while
    any other run waits for the lease. The caller commits before calling the gateway: no
    lock or transaction spans the gateway's I/O.
    """
    job = lock_job(session, job_id)
    if job is not None and job.status == S.PAID and job.step_due_at is not None:
        return dues_of(job)  # a repeat: reviews are still to be asked
    if job is None or job.status != S.COMPLETED:
        return []
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job_id))
    ours = token is not None and payment is not None and payment.claim_token == token
    if job.timer_at is not None and job.timer_at > ctx.now and not ours:
        return dues_of(job)  # not yet: the retry's deadline (or another run's lease) stands
    assert job.price_cents is not None and job.fee_cents is not None
    assert job.subtotal_cents is not None
    method = (
        session.scalar(sa.select(Consumer.payment_method).where(Consumer.id == job.consumer_id))
        or "pm_card_visa"
    )
    if payment is None:
        payment = Payment(
            job_id=job_id,
            idempotency_key=intent_key(job_id, 1),
            payment_method=method,
            amount_cents=job.price_cents,
            fee_cents=job.fee_cents,
            worker_earnings_cents=job.subtotal_cents,
            created_at=ctx.now,
        )
        session.add(payment)
    elif not payment.in_doubt or payment.payment_method is None:
        # The last intent was answered for sure: a new one, with the card on file now.
        number = 1 + len(payment.attempts)
        payment.idempotency_key = intent_key(job_id, number)
        payment.payment_method = method
    return lease(session, job, payment, ctx, token, job_reference(job_id))


def lease(
    session: Session,
    job: Job,
    payment: Payment,
    ctx: StepContext,
    token: str | None,
    reference: str,
) -> Claim:
    """Claim ``payment``'s current intent for one run: in doubt from now until an answer is
    recorded, marked with the run's ``token``, the job's deadline moved to the lease's end."""
    payment.in_doubt = True  # from now until an answer is recorded, it may have charged
    payment.claim_token = token or uuid.uuid4().hex
    lease_until = ctx.after(ctx.settings.payment_lease_seconds)
    set_next(job, Next.at(lease_until), ctx.now)
    session.flush()
    assert payment.payment_method is not None
    return Claim(
        job_id=job.id,
        lease_until=lease_until,
        amount_cents=payment.amount_cents,
        payment_method=payment.payment_method,
        idempotency_key=payment.idempotency_key,
        token=payment.claim_token,
        reference=reference,
    )


def add_attempt(payment: Payment, claim: Claim, result: ChargeResult, now: dt.datetime) -> int:
    """Record the outcome of ``claim``'s call on ``payment`` and release the claim; returns
    the attempt's number. Every attempt is in the collection (loaded with the payment,
    appended to here): the locked job keeps any other run from recording one meanwhile."""
    number = 1 + len(payment.attempts)
    payment.claim_token = None
    payment.in_doubt = result.outcome == AttemptOutcome.ERROR
    payment.attempts.append(
        PaymentAttempt(
            job_id=claim.job_id,
            number=number,
            outcome=result.outcome,
            detail=result.detail,
            idempotency_key=claim.idempotency_key,
            attempted_at=now,
        )
    )
    return number


def charge(gateway: PaymentGateway, claim: Claim) -> ChargeResult:
    """Call the gateway for ``claim``; an exception (timeout, 5xx, refused connection) is an
    attempt with outcome ``error``, its intent still in doubt."""
    try:
        return gateway.charge(
            idempotency_key=claim.idempotency_key,
            amount_cents=claim.amount_cents,
            payment_method=claim.payment_method,
            reference=claim.reference,
        )
    except Exception as exc:
        log.warning("payment gateway error", exc_info=True, extra={"job_id": claim.job_id})
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        return ChargeResult(AttemptOutcome.ERROR, None, detail[:200])  # the column holds 200


def process_payment(
    session: Session, job_id: int, ctx: StepContext, token: str | None = None
) -> list[Due]:
    """completed → paid, or a refused attempt with backoff, or payment_failed at the last.

    The three phases in one session, for callers with nothing else in the transaction; the
    worker runs them in two transactions around the gateway call (``LifecycleTask``).
    """
    if ctx.gateway is None:
        raise ValueError("process_payment needs a payment gateway")
    claim = claim_payment(session, job_id, ctx, token)
    if not isinstance(claim, Claim):
        return claim
    return record_payment(session, claim, charge(ctx.gateway, claim), ctx)


def record_payment(
    session: Session, claim: Claim, result: ChargeResult, ctx: StepContext
) -> list[Due]:
    """Transaction 2: record the attempt's outcome if the claim is still ours.

    A compare-and-set on the locked job: still completed, still under this claim's lease and
    token. Otherwise the world moved on (the lease ran out and another run took over, or an
    operator acted); the intent's idempotency key makes that run's charge the same charge.
    """
    job_id = claim.job_id
    job = lock_job(session, job_id)
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job_id))
    if (
        job is None
        or job.status != S.COMPLETED
        or job.timer_at != claim.lease_until
        or payment is None
        or payment.claim_token != claim.token
    ):
        return dues_of(job) if job is not None and job.status == S.PAID else []
    succeeded = result.outcome == AttemptOutcome.SUCCEEDED
    attempt_no = add_attempt(payment, claim, result, ctx.now)
    if succeeded:  # written with the payment's INSERT (or UPDATE)
        payment.status, payment.gateway_charge_id = PaymentStatus.SUCCEEDED, result.charge_id
        payment.succeeded_at = ctx.now
    if succeeded:
        # The attempt count rides on the compare-and-set (the job is locked: no lost update).
        paid = transition(
            session,
            job_id,
            S.COMPLETED,
            S.PAID,
            actor=SYSTEM,
            then=Next.now(),
            now=ctx.now,
            data={
                "charge_id": result.charge_id,
                "amount_cents": payment.amount_cents,
                "attempt": attempt_no,
            },
            values={"payment_attempts": job.payment_attempts + 1},
        )
        receipts = [
            to_consumer(
                job.consumer_id,
                "payment_receipt",
                f"You paid {payment.amount_cents / 100:.2f} {job.currency} for '{job.title}'.",
                job_id=job_id,
                amount_cents=payment.amount_cents,
            )
        ]
        if job.worker_id is not None:
            receipts.append(
                to_worker(
                    job.worker_id,
                    "payment_receipt",
                    f"You earned {payment.worker_earnings_cents / 100:.2f} {job.currency} "
                    f"for '{job.title}'.",
                    job_id=job_id,
                    earnings_cents=payment.worker_earnings_cents,
                )
            )
        notify(session, *receipts)
        return dues_of(paid)
    job.payment_attempts += 1  # the budget; ``attempt_no`` is the attempt's number
    record_event(
        session,
        job_id,
        "payment_attempt_refused",
        actor=SYSTEM,
        now=ctx.now,
        data={
            "attempt": attempt_no,
            "outcome": result.outcome.value,
            "detail": result.detail,
        },
    )
    policy = ctx.policy(session, job_id)
    if job.payment_attempts >= policy.payment_max_attempts:
        payment.status = PaymentStatus.FAILED
        session.flush()
        transition(
            session,
            job_id,
            S.COMPLETED,
            S.PAYMENT_FAILED,
            actor=SYSTEM,
            then=Next.nothing(),
            now=ctx.now,
            data={"attempts": attempt_no},
        )
        notify_consumer(
            session,
            job.consumer_id,
            "payment_failed",
            f"We could not charge your card for '{job.title}'.",
            job_id=job_id,
        )
        return []
    # The backoff, like the budget, counts the attempts since the job entered completed.
    delay = policy.payment_retry_base_seconds * 2 ** (job.payment_attempts - 1)
    return set_next(job, Next.at(ctx.after(delay)), ctx.now)
