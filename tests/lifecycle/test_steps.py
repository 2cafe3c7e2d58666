"""The steps as plain functions on a driven clock: on time, never early, idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.config import Settings
from gigco.lifecycle import disputes, operator
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import ChargeResult, GatewayRefused, SimulatedGateway
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.projection import project_payment
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.steps import run_step
from gigco.lifecycle.transitions import Due
from gigco.models import (
    AttemptOutcome,
    Consumer,
    Job,
    JobEvent,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Payment,
    PaymentAttempt,
    Role,
    SimulatedCharge,
)
from tests import factories as f

S = JobStatus
T0 = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
TICK = dt.timedelta(microseconds=1)


@pytest.fixture
def at(settings: Settings, isolated_sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    """A StepContext at a given time, with the simulated gateway."""
    gateway = SimulatedGateway(isolated_sessions)

    def make(now: dt.datetime, **changes: object) -> StepContext:
        return StepContext(settings=settings.replace(**changes), gateway=gateway, now=now)

    return make


def history(session: Session, job_id: int) -> list[str]:
    return list(
        session.scalars(
            sa.select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)
        )
    )


def reread(session: Session, job: Job) -> Job:
    session.expire_all()
    return session.get(Job, job.id)  # type: ignore[return-value]


def test_price_then_offer_and_each_again_changes_nothing(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    job = f.job(session, hours=1.75)
    ctx = at(T0)
    assert run_step(session, Step.PRICE, job.id, ctx) == [Due(Step.SEND_OFFER, job.id)]
    # A repeat (a redelivery after a crash before the offer went out) prices nothing again
    # but names the offer as still due, so it goes out now rather than after the sweep.
    assert run_step(session, Step.PRICE, job.id, ctx) == [Due(Step.SEND_OFFER, job.id)]
    offer = run_step(session, Step.SEND_OFFER, job.id, ctx)
    deadline = T0 + dt.timedelta(seconds=ctx.settings.offer_ttl_seconds)
    assert offer == [Due(Step.EXPIRE_OFFER, job.id, deadline)]
    assert run_step(session, Step.SEND_OFFER, job.id, ctx) == []
    job = reread(session, job)
    assert (job.status, job.subtotal_cents, job.fee_cents, job.price_cents) == (
        S.OFFERED,
        15750,
        1575,
        17325,
    )
    assert (job.offer_expires_at, job.timer_at, job.step_due_at) == (deadline, deadline, None)
    assert history(session, job.id) == ["priced", "offered"]


def test_offer_expires_at_its_deadline_and_never_before(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    deadline = T0 + dt.timedelta(hours=24)
    job = f.job(session, status=S.OFFERED, offer_expires_at=deadline, timer_at=deadline)
    assert run_step(session, Step.EXPIRE_OFFER, job.id, at(deadline - TICK)) == [
        Due(Step.EXPIRE_OFFER, job.id, deadline)
    ]
    assert reread(session, job).status == S.OFFERED
    assert run_step(session, Step.EXPIRE_OFFER, job.id, at(deadline)) == []
    assert reread(session, job).status == S.EXPIRED
    assert reread(session, job).timer_at is None
    assert run_step(session, Step.EXPIRE_OFFER, job.id, at(deadline)) == []
    assert history(session, job.id) == ["expired"]


def test_matching_offers_one_worker_at_a_time_and_expires_never_early(
    session: Session,
    at,  # type: ignore[no-untyped-def]
) -> None:
    first = f.worker(session, rating_sum=5, rating_count=1)
    second = f.worker(session)
    job = f.job(session, status=S.ACCEPTED)
    ctx = at(T0)
    ttl = dt.timedelta(seconds=ctx.settings.opportunity_ttl_seconds)
    assert run_step(session, Step.MATCH, job.id, ctx) == [Due(Step.MATCH, job.id, T0 + ttl)]
    assert run_step(session, Step.MATCH, job.id, at(T0 + ttl - TICK)) == [
        Due(Step.MATCH, job.id, T0 + ttl)
    ]
    pending = session.scalars(sa.select(Opportunity).where(Opportunity.job_id == job.id)).all()
    assert [(o.worker_id, o.status) for o in pending] == [(first.id, OpportunityStatus.PENDING)]
    later = T0 + ttl
    assert run_step(session, Step.MATCH, job.id, at(later)) == [
        Due(Step.MATCH, job.id, later + ttl)
    ]
    session.expire_all()
    opps = session.scalars(
        sa.select(Opportunity).where(Opportunity.job_id == job.id).order_by(Opportunity.id)
    ).all()
    assert [(o.worker_id, o.status) for o in opps] == [
        (first.id, OpportunityStatus.EXPIRED),
        (second.id, OpportunityStatus.PENDING),
    ]
    assert history(session, job.id) == [
        "matching_round_started",
        "opportunity_offered",
        "opportunity_expired",
        "opportunity_offered",
    ]


def test_rounds_wait_k_times_the_base_then_no_worker(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    job = f.job(session, status=S.ACCEPTED)
    base = dt.timedelta(seconds=300)
    ctx = at(T0, match_retry_base_seconds=300, match_max_rounds=3)
    assert run_step(session, Step.MATCH, job.id, ctx) == [Due(Step.MATCH, job.id, T0 + base)]
    round2 = T0 + base
    early = at(round2 - TICK, match_retry_base_seconds=300, match_max_rounds=3)
    assert run_step(session, Step.MATCH, job.id, early) == [Due(Step.MATCH, job.id, round2)]
    assert reread(session, job).match_round == 1
    ctx2 = at(round2, match_retry_base_seconds=300, match_max_rounds=3)
    round3 = round2 + 2 * base
    assert run_step(session, Step.MATCH, job.id, ctx2) == [Due(Step.MATCH, job.id, round3)]
    ctx3 = at(round3, match_retry_base_seconds=300, match_max_rounds=3)
    assert run_step(session, Step.MATCH, job.id, ctx3) == []
    job = reread(session, job)
    assert (job.status, job.match_round, job.timer_at) == (S.NO_WORKER, 3, None)
    assert history(session, job.id) == [
        "matching_round_started",
        "matching_round_ended",
        "matching_round_started",
        "matching_round_ended",
        "matching_round_started",
        "no_worker",
    ]


def _completed(session: Session, method: str) -> Job:
    owner = f.consumer(session, payment_method=method)
    assigned = f.worker(session)
    return f.job(
        session,
        owner,
        status=S.COMPLETED,
        worker_id=assigned.id,
        step_due_at=T0,
    )


def test_payment_backs_off_exponentially_then_fails(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    job = _completed(session, "pm_card_chargeDeclined")
    now, waits = T0, []
    for _ in range(4):
        dues = run_step(
            session,
            Step.PAY,
            job.id,
            at(now, payment_retry_base_seconds=60, payment_max_attempts=5),
        )
        assert (
            run_step(
                session,
                Step.PAY,
                job.id,
                at(
                    now + dt.timedelta(seconds=59),
                    payment_retry_base_seconds=60,
                    payment_max_attempts=5,
                ),
            )
            == dues
        )
        (due,) = dues
        waits.append((due.at - now).total_seconds())
        now = due.at
    assert waits == [60, 120, 240, 480]
    assert run_step(session, Step.PAY, job.id, at(now, payment_max_attempts=5)) == []
    assert reread(session, job).status == S.PAYMENT_FAILED
    outcomes = session.scalars(
        sa.select(PaymentAttempt.outcome).where(PaymentAttempt.job_id == job.id)
    ).all()
    assert [o.value for o in outcomes] == ["declined"] * 5
    assert history(session, job.id).count("payment_attempt_refused") == 5


def test_flaky_card_is_charged_once_on_the_third_attempt(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    job = _completed(session, "pm_card_flaky")
    now = T0
    for _ in range(2):
        (due,) = run_step(session, Step.PAY, job.id, at(now))
        now = due.at
    assert run_step(session, Step.PAY, job.id, at(now)) == [Due(Step.REQUEST_REVIEWS, job.id)]
    # A repeat charges nothing but names the review requests as still due.
    assert run_step(session, Step.PAY, job.id, at(now)) == [Due(Step.REQUEST_REVIEWS, job.id)]
    assert reread(session, job).status == S.PAID
    charges = session.scalars(
        sa.select(SimulatedCharge)
        .where(SimulatedCharge.reference == f"job-{job.id}")
        .order_by(SimulatedCharge.idempotency_key)
    ).all()
    # Each refusal closes its intent: three intents, three keys, the third one charged.
    assert [(c.idempotency_key, c.charge_id is not None) for c in charges] == [
        (f"job-{job.id}-intent-1", False),
        (f"job-{job.id}-intent-2", False),
        (f"job-{job.id}-intent-3", True),
    ]
    run_step(session, Step.REQUEST_REVIEWS, job.id, at(now))
    assert run_step(session, Step.PAY, job.id, at(now)) == []  # nothing is pending any more


def test_attempts_are_numbered_once_across_an_operator_retry(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    """Refused 1, 2, failed after 2; the operator retries; refused 3, paid at 4 — in the
    history, the attempt rows and the payment resource alike, while the budget starts again."""
    job = _completed(session, "pm_card_chargeDeclined")
    tight = {"payment_retry_base_seconds": 60, "payment_max_attempts": 2}
    now = T0
    (due,) = run_step(session, Step.PAY, job.id, at(now, **tight))
    assert run_step(session, Step.PAY, job.id, at(due.at, **tight)) == []
    assert reread(session, job).status == S.PAYMENT_FAILED
    now = due.at + dt.timedelta(hours=1)
    operator.retry(session, job.id, at(now, **tight), "card replaced")
    session.flush()
    (due,) = run_step(session, Step.PAY, job.id, at(now, **tight))
    assert (due.at - now).total_seconds() == 60  # the backoff starts again with the budget
    consumer = session.get(Consumer, job.consumer_id)
    assert consumer is not None
    consumer.payment_method = "pm_card_visa"
    session.flush()
    assert run_step(session, Step.PAY, job.id, at(due.at, **tight)) == [
        Due(Step.REQUEST_REVIEWS, job.id)
    ]
    events = session.execute(
        sa.select(JobEvent.type, JobEvent.data)
        .where(JobEvent.job_id == job.id, JobEvent.type.like("pay%") | (JobEvent.type == "paid"))
        .order_by(JobEvent.seq)
    ).all()
    assert [(type_, data.get("attempt", data.get("attempts"))) for type_, data in events] == [
        ("payment_attempt_refused", 1),
        ("payment_attempt_refused", 2),
        ("payment_failed", 2),
        ("payment_retry", None),
        ("payment_attempt_refused", 3),
        ("paid", 4),
    ]
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job.id))
    assert payment is not None  # GET /v1/jobs/<id>/payment shows these to the consumer
    shown = project_payment(payment, job, Principal(Role.CONSUMER, job.consumer_id))
    assert [(a["number"], a["outcome"]) for a in shown["attempts"]] == [
        (1, "declined"),
        (2, "declined"),
        (3, "declined"),
        (4, "succeeded"),
    ]
    # Every refusal closed its intent: the backoff's retry, the operator's retry and the new
    # card each sent a new key.
    assert [a.idempotency_key for a in payment.attempts] == [
        f"job-{job.id}-intent-{n}" for n in (1, 2, 3, 4)
    ]


def test_gateway_replays_a_succeeded_key_without_moving_money(
    session: Session, isolated_sessions: sessionmaker[Session]
) -> None:
    gateway = SimulatedGateway(isolated_sessions)
    visa = {"amount_cents": 500, "payment_method": "pm_card_visa", "reference": "job-x"}
    first = gateway.charge(idempotency_key="job-x-intent-1", **visa)  # type: ignore[arg-type]
    again = gateway.charge(idempotency_key="job-x-intent-1", **visa)  # type: ignore[arg-type]
    assert first.charge_id and again.charge_id == first.charge_id
    assert session.scalar(sa.select(sa.func.count()).select_from(SimulatedCharge)) == 1


class TimeoutAfterSending:
    """The simulated processor behind a connection that times out once the request is sent:
    the first charge is taken, its answer lost (an in-doubt outcome)."""

    def __init__(self, inner: SimulatedGateway) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str]] = []

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str, reference: str
    ) -> ChargeResult:
        self.sent.append((idempotency_key, payment_method))
        answer = self.inner.charge(
            idempotency_key=idempotency_key,
            amount_cents=amount_cents,
            payment_method=payment_method,
            reference=reference,
        )
        if len(self.sent) == 1:
            raise TimeoutError("read timed out")
        return answer

    def refund(self, *, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        return self.inner.refund(
            idempotency_key=idempotency_key, charge_id=charge_id, amount_cents=amount_cents
        )


def test_the_gateway_keeps_a_keys_first_answer_and_refuses_another_request_under_it(
    session: Session, isolated_sessions: sessionmaker[Session]
) -> None:
    """Stripe's rules: a decline is stored and replayed like a charge; the same key with
    another card or amount is refused and moves no money."""
    gateway = SimulatedGateway(isolated_sessions)
    declined = {"amount_cents": 500, "reference": "job-y"}
    first = gateway.charge(
        idempotency_key="job-y-intent-1", payment_method="pm_card_chargeDeclined", **declined
    )
    again = gateway.charge(
        idempotency_key="job-y-intent-1", payment_method="pm_card_chargeDeclined", **declined
    )
    assert first.outcome == again.outcome == AttemptOutcome.DECLINED
    with pytest.raises(GatewayRefused):  # a new card under the used key
        gateway.charge(idempotency_key="job-y-intent-1", payment_method="pm_card_visa", **declined)
    with pytest.raises(GatewayRefused):  # another amount under the used key
        gateway.charge(
            idempotency_key="job-y-intent-1",
            payment_method="pm_card_chargeDeclined",
            amount_cents=400,
            reference="job-y",
        )
    charged = session.scalar(
        sa.select(sa.func.count()).where(SimulatedCharge.charge_id.is_not(None))
    )
    assert charged == 0


def test_a_new_card_after_a_decline_is_a_new_intent_under_a_new_key(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    job = _completed(session, "pm_card_chargeDeclined")
    (due,) = run_step(session, Step.PAY, job.id, at(T0))
    consumer = session.get(Consumer, job.consumer_id)
    assert consumer is not None
    consumer.payment_method = "pm_card_visa"  # PATCH /v1/consumers/me
    session.flush()
    assert run_step(session, Step.PAY, job.id, at(due.at)) == [Due(Step.REQUEST_REVIEWS, job.id)]
    attempts = session.scalars(
        sa.select(PaymentAttempt)
        .where(PaymentAttempt.job_id == job.id)
        .order_by(PaymentAttempt.number)
    ).all()
    assert [(a.number, a.outcome.value, a.idempotency_key) for a in attempts] == [
        (1, "declined", f"job-{job.id}-intent-1"),
        (2, "succeeded", f"job-{job.id}-intent-2"),
    ]
    ledger = session.execute(
        sa.select(SimulatedCharge.idempotency_key, SimulatedCharge.payment_method)
        .where(SimulatedCharge.reference == f"job-{job.id}")
        .order_by(SimulatedCharge.idempotency_key)
    ).all()
    assert [tuple(row) for row in ledger] == [
        (f"job-{job.id}-intent-1", "pm_card_chargeDeclined"),
        (f"job-{job.id}-intent-2", "pm_card_visa"),
    ]


def test_an_in_doubt_charge_is_repeated_under_its_key_and_card_never_charged_again(
    session: Session, settings: Settings, isolated_sessions: sessionmaker[Session]
) -> None:
    """The processor took the money but the answer timed out; meanwhile the consumer changed
    card. The retry repeats the intent (same key, same card) and finds the charge: one charge,
    and no new intent on the new card while the old one might have charged."""
    gateway = TimeoutAfterSending(SimulatedGateway(isolated_sessions))
    job = _completed(session, "pm_card_visa")
    (due,) = run_step(session, Step.PAY, job.id, StepContext(settings, gateway, T0))
    consumer = session.get(Consumer, job.consumer_id)
    assert consumer is not None
    consumer.payment_method = "pm_card_chargeDeclined"
    session.flush()
    assert run_step(session, Step.PAY, job.id, StepContext(settings, gateway, due.at)) == [
        Due(Step.REQUEST_REVIEWS, job.id)
    ]
    key = f"job-{job.id}-intent-1"
    assert gateway.sent == [(key, "pm_card_visa"), (key, "pm_card_visa")]
    attempts = session.scalars(
        sa.select(PaymentAttempt)
        .where(PaymentAttempt.job_id == job.id)
        .order_by(PaymentAttempt.number)
    ).all()
    assert [(a.outcome.value, a.idempotency_key) for a in attempts] == [
        ("error", key),
        ("succeeded", key),
    ]
    charges = session.scalars(
        sa.select(SimulatedCharge.charge_id).where(SimulatedCharge.charge_id.is_not(None))
    ).all()
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job.id))
    assert payment is not None and charges == [payment.gateway_charge_id]


def test_reviews_close_at_the_deadline_never_before(session: Session, at) -> None:  # type: ignore[no-untyped-def]
    deadline = T0 + dt.timedelta(days=7)
    job = f.job(session, status=S.REVIEW_PENDING, review_deadline=deadline, timer_at=deadline)
    assert run_step(session, Step.CLOSE, job.id, at(deadline - TICK)) == [
        Due(Step.CLOSE, job.id, deadline)
    ]
    assert reread(session, job).status == S.REVIEW_PENDING
    assert run_step(session, Step.CLOSE, job.id, at(deadline)) == []
    assert reread(session, job).status == S.CLOSED


@pytest.mark.parametrize(
    "step,status",
    [
        (Step.PRICE, S.PRICED),
        (Step.SEND_OFFER, S.OFFERED),
        (Step.EXPIRE_OFFER, S.ACCEPTED),
        (Step.MATCH, S.WORKER_ASSIGNED),
        (Step.SCHEDULE, S.IN_PROGRESS),
        (Step.PAY, S.PAID),
        (Step.REQUEST_REVIEWS, S.REVIEW_PENDING),
        (Step.CLOSE, S.CLOSED),
    ],
)
def test_a_step_finds_the_job_moved_on_and_does_nothing(
    session: Session,
    at,
    step: Step,
    status: JobStatus,  # type: ignore[no-untyped-def]
) -> None:
    job = f.job(session, status=status, offer_expires_at=T0, review_deadline=T0)
    before = (job.status, job.event_seq)
    assert run_step(session, step, job.id, at(T0 + dt.timedelta(days=30))) == []
    job = reread(session, job)
    assert (job.status, job.event_seq) == before
    assert history(session, job.id) == []


def test_a_job_is_locked_once_per_transaction_and_read_again_in_the_next(
    session: Session, isolated_sessions: sessionmaker[Session]
) -> None:
    job = f.job(session)
    session.flush()
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    with isolated_sessions() as s:
        sa.event.listen(s.connection(), "before_cursor_execute", record)
        first = lock_job(s, job.id)
        assert lock_job(s, job.id) is first
        assert sum("FOR UPDATE" in q for q in seen) == 1
        s.commit()
        # Another transaction may have changed the row in between: it is read and locked again.
        s.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(title="Changed elsewhere")
            .execution_options(synchronize_session=False)  # the loaded job is now stale
        )
        again = lock_job(s, job.id)
        assert again is not None and again.title == "Changed elsewhere"
        assert sum("FOR UPDATE" in q for q in seen) == 2


def test_a_refund_is_taken_once_and_a_retry_of_its_run_resumes_its_claim(
    session: Session, at
) -> None:  # type: ignore[no-untyped-def]
    job = _completed(session, "pm_card_visa")
    run_step(session, Step.PAY, job.id, at(T0))
    run_step(session, Step.REQUEST_REVIEWS, job.id, at(T0))
    consumer = Principal(Role.CONSUMER, job.consumer_id)
    disputes.open_dispute(session, job.id, consumer, at(T0), reason="Broken tap")
    dispute = disputes.resolve_dispute(
        session, job.id, Principal(Role.OPERATOR), at(T0), refund_cents=300, note="Part"
    )
    first = disputes.claim_refund(session, dispute.id, at(T0), token="task-1")
    assert first is not None  # committed; then the run's connection died
    assert disputes.claim_refund(session, dispute.id, at(T0), token="task-2") is None
    again = disputes.claim_refund(session, dispute.id, at(T0), token="task-1")
    assert again is not None and again.idempotency_key == first.idempotency_key
    gateway = at(T0).gateway
    refund_id = disputes.refund_at_gateway(gateway, again)
    assert refund_id is not None
    assert disputes.record_refund(session, again, refund_id, at(T0))
    assert not disputes.record_refund(session, first, refund_id, at(T0))  # recorded once
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job.id))
    assert payment is not None and payment.refunded_cents == 300
    assert history(session, job.id)[-3:] == ["dispute_opened", "dispute_resolved", "refunded"]
