"""The late-cancellation fee: a consumer's cancel after a worker is assigned and within the
policy's window of ``scheduled_start`` costs a percent of the subtotal, paid to the worker.

The cancel itself answers at once (``gigco.lifecycle.actions.cancel_job``): it records the
fee on the ``cancelled`` event and opens the job's payment of kind ``late_cancel_fee`` (all
of it the worker's earnings, no platform fee), and makes step ``charge_late_cancel_fee`` due.
The step is the job's payment step over again, in the same three phases (claim, the
gateway's call with no transaction open, record) and with the same charge intents, leases
and deadlines: the cancelled job's ``timer_at`` holds the lease or the backoff's retry, so
the ordinary sweeps re-send it. Its keys are its own, ``job-<id>-late-cancel-fee-<n>``
(``n``: the number of the attempt that opened the intent), never the price's
``job-<id>-intent-<n>``, and its charges carry the reference ``job-<id>-late-cancel-fee``.

A refused fee never undoes the cancel: each refusal is ``late_cancel_fee_refused`` and a
retry after the policy's backoff; after the policy's ``payment_max_attempts`` the payment is
``failed``, ``late_cancel_fee_failed`` is recorded, both parties are told, and nothing more
is due. Operators see it on the job's page in ``/ops`` (the payment, its attempts and
events); the finance export counts only fees taken.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import ChargeResult
from gigco.lifecycle.history import record_event
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.notify import notify, to_consumer, to_worker
from gigco.lifecycle.payments import Claim, add_attempt, charge, lease
from gigco.lifecycle.policies import Policy
from gigco.lifecycle.principals import SYSTEM
from gigco.lifecycle.schedule import Next
from gigco.lifecycle.transitions import Due, dues_of, set_next
from gigco.models import (
    PAYMENT_KIND_LATE_CANCEL_FEE,
    AttemptOutcome,
    Consumer,
    Job,
    JobStatus,
    Payment,
    PaymentStatus,
)

S = JobStatus
# The statuses in which a worker is assigned and a cancel may cost the fee.
ASSIGNED = frozenset({S.WORKER_ASSIGNED, S.SCHEDULED})


def fee_key(job_id: int, attempt_number: int) -> str:
    """The idempotency key of the fee's intent opened by attempt ``attempt_number``."""
    return f"job-{job_id}-late-cancel-fee-{attempt_number}"


def fee_reference(job_id: int) -> str:
    """The reference a job's late-cancellation fee carries at the processor."""
    return f"job-{job_id}-late-cancel-fee"


def late_fee_cents(job: Job, policy: Policy, now: dt.datetime) -> int:
    """What a consumer's cancel of ``job`` at ``now`` costs: the policy's percent of the
    subtotal, rounded half up to the cent, when a worker is assigned and ``scheduled_start``
    is at most the policy's window away (or past); else 0 (so under a policy without it, and
    on a job with no policy at all: one the previous release created, before the rule)."""
    window, percent = policy.late_cancel_window_seconds, policy.late_cancel_fee_percent
    if job.policy_version is None or window is None or percent is None:
        return 0
    if not job.subtotal_cents:
        return 0
    if job.status not in ASSIGNED or job.worker_id is None:
        return 0
    if job.scheduled_start - now > dt.timedelta(seconds=window):
        return 0
    fee = Decimal(job.subtotal_cents) * Decimal(str(percent)) / 100
    return int(fee.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def open_fee(session: Session, job: Job, fee_cents: int, now: dt.datetime) -> Payment:
    """The cancelled job's fee, pending: a payment of kind ``late_cancel_fee`` whose first
    intent is opened with the consumer's card on file now."""
    method = session.scalar(
        sa.select(Consumer.payment_method).where(Consumer.id == job.consumer_id)
    )
    payment = Payment(
        job_id=job.id,
        kind=PAYMENT_KIND_LATE_CANCEL_FEE,
        idempotency_key=fee_key(job.id, 1),
        payment_method=method or "pm_card_visa",
        amount_cents=fee_cents,
        fee_cents=0,
        worker_earnings_cents=fee_cents,
        created_at=now,
    )
    session.add(payment)
    return payment


def _fee_of(session: Session, job_id: int) -> Payment | None:
    return session.scalar(
        sa.select(Payment).where(
            Payment.job_id == job_id, Payment.kind == PAYMENT_KIND_LATE_CANCEL_FEE
        )
    )


def claim_fee(
    session: Session, job_id: int, ctx: StepContext, token: str | None = None
) -> Claim | list[Due]:
    """Transaction 1: claim the fee's next attempt on the locked cancelled job, as
    ``payments.claim_payment`` claims a price's: the deadline moves to the lease's end, an
    intent in doubt is repeated under its key, one answered for sure gives way to a new one."""
    job = lock_job(session, job_id)
    if job is None or job.status != S.CANCELLED:
        return []
    payment = _fee_of(session, job_id)
    if payment is None or payment.status != PaymentStatus.PENDING:
        return set_next(job, Next.nothing(), ctx.now)  # nothing (more) to charge
    ours = token is not None and payment.claim_token == token
    if job.timer_at is not None and job.timer_at > ctx.now and not ours:
        return dues_of(job)  # not yet: the retry's deadline (or another run's lease) stands
    if not payment.in_doubt and payment.attempts:
        # The last intent was answered for sure: a new one, with the card on file now.
        method = session.scalar(
            sa.select(Consumer.payment_method).where(Consumer.id == job.consumer_id)
        )
        payment.idempotency_key = fee_key(job_id, 1 + len(payment.attempts))
        payment.payment_method = method or "pm_card_visa"
    return lease(session, job, payment, ctx, token, fee_reference(job_id))


def record_fee(session: Session, claim: Claim, result: ChargeResult, ctx: StepContext) -> list[Due]:
    """Transaction 2: the attempt's outcome, if the claim is still ours (a compare-and-set on
    the locked job: still cancelled, under this lease and token); else nothing."""
    job_id = claim.job_id
    job = lock_job(session, job_id)
    payment = _fee_of(session, job_id)
    if (
        job is None
        or job.status != S.CANCELLED
        or job.timer_at != claim.lease_until
        or payment is None
        or payment.claim_token != claim.token
    ):
        return []
    succeeded = result.outcome == AttemptOutcome.SUCCEEDED
    attempt_no = add_attempt(payment, claim, result, ctx.now)
    if succeeded:
        payment.status, payment.gateway_charge_id = PaymentStatus.SUCCEEDED, result.charge_id
        payment.succeeded_at = ctx.now
        set_next(job, Next.nothing(), ctx.now)
        session.flush()
        record_event(
            session,
            job_id,
            "late_cancel_fee_charged",
            actor=SYSTEM,
            now=ctx.now,
            data={
                "amount_cents": payment.amount_cents,
                "earnings_cents": payment.worker_earnings_cents,
                "attempt": attempt_no,
                "charge_id": result.charge_id,
            },
        )
        _tell(session, job, payment, charged=True)
        return []
    job.payment_attempts += 1  # the budget, as for the price
    record_event(
        session,
        job_id,
        "late_cancel_fee_refused",
        actor=SYSTEM,
        now=ctx.now,
        data={"attempt": attempt_no, "outcome": result.outcome.value, "detail": result.detail},
    )
    policy = ctx.policy(session, job_id)
    if job.payment_attempts >= policy.payment_max_attempts:
        payment.status = PaymentStatus.FAILED
        set_next(job, Next.nothing(), ctx.now)
        session.flush()
        record_event(
            session,
            job_id,
            "late_cancel_fee_failed",
            actor=SYSTEM,
            now=ctx.now,
            data={"amount_cents": payment.amount_cents, "attempts": attempt_no},
        )
        _tell(session, job, payment, charged=False)
        return []
    delay = policy.payment_retry_base_seconds * 2 ** (job.payment_attempts - 1)
    return set_next(job, Next.at(ctx.after(delay)), ctx.now)


def _tell(session: Session, job: Job, payment: Payment, *, charged: bool) -> None:
    """Both parties: the fee was charged (the worker earns it), or could not be."""
    money = f"{payment.amount_cents / 100:.2f} {job.currency}"
    kind = "late_cancel_fee" if charged else "late_cancel_fee_failed"
    parties = [
        to_consumer(
            job.consumer_id,
            kind,
            f"You were charged the late-cancellation fee of {money} for '{job.title}'."
            if charged
            else f"We could not charge the late-cancellation fee of {money} for '{job.title}';"
            " the job stays cancelled.",
            job_id=job.id,
            amount_cents=payment.amount_cents,
        )
    ]
    if job.worker_id is not None:
        parties.append(
            to_worker(
                job.worker_id,
                kind,
                f"You earned the late-cancellation fee of {money} for '{job.title}'."
                if charged
                else f"The late-cancellation fee for '{job.title}' could not be collected.",
                job_id=job.id,
                earnings_cents=payment.worker_earnings_cents,
            )
        )
    notify(session, *parties)


def charge_late_cancel_fee(
    session: Session, job_id: int, ctx: StepContext, token: str | None = None
) -> list[Due]:
    """The three phases in one session, for callers with nothing else in the transaction;
    the worker runs them in two transactions around the gateway's call."""
    if ctx.gateway is None:
        raise ValueError("charge_late_cancel_fee needs a payment gateway")
    claim = claim_fee(session, job_id, ctx, token)
    if not isinstance(claim, Claim):
        return claim
    return record_fee(session, claim, charge(ctx.gateway, claim), ctx)
