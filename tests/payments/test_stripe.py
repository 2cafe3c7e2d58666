"""The Stripe gateway against a real, stateful Stripe-API server (localstripe on loopback),
behind a proxy that injects faults: the money Stripe holds is exactly what the history says.

Steps run as plain functions on a driven clock (as in tests/lifecycle/test_steps.py); the
gateway speaks HTTP to the server through the official SDK.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.config import Settings
from gigco.gateways.stripe import StripeGateway, stripe_client
from gigco.lifecycle import actions, cancel_fees, disputes, ledger, operator, payments, policies
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.steps import run_step
from gigco.models import Consumer, Job, JobStatus, Payment, PaymentAttempt, Role
from tests import factories as f
from tests.payments.conftest import API_KEY
from tests.payments.fault_proxy import Faults

S = JobStatus
T0 = dt.datetime(2030, 3, 1, 12, tzinfo=dt.UTC)
TIMEOUT = 1.0  # the SDK's timeout per request in these tests


@pytest.fixture
def stripe(
    proxied: tuple[str, Faults], isolated_sessions: sessionmaker[Session], settings: Settings
) -> tuple[StripeGateway, Faults, Settings]:
    url, faults = proxied
    gateway = StripeGateway(stripe_client(API_KEY, url, TIMEOUT), isolated_sessions)
    tight = settings.replace(payment_retry_base_seconds=60, payment_max_attempts=3)
    return gateway, faults, tight


def _ctx(stripe: tuple[StripeGateway, Faults, Settings], now: dt.datetime) -> StepContext:
    gateway, _, settings = stripe
    return StepContext(settings=settings, gateway=gateway, now=now)


def _completed(session: Session, method: str) -> Job:
    owner = f.consumer(session, payment_method=method)
    return f.job(session, owner, status=S.COMPLETED, worker_id=f.worker(session).id, step_due_at=T0)


def _intents(server: str, job_id: int, reference: str | None = None) -> list[dict[str, Any]]:
    """The PaymentIntents the Stripe server holds for a job's price (or under ``reference``),
    oldest first."""
    reference = reference or f"job-{job_id}"
    found, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"starting_after": after} if after else {})}
        page = requests.get(
            f"{server}/v1/payment_intents", params=params, auth=(API_KEY, ""), timeout=5
        ).json()
        found += [i for i in page["data"] if i["metadata"].get("gigco_job") == reference]
        if not page["has_more"]:
            return sorted(found, key=lambda i: i["created"])
        after = page["data"][-1]["id"]


def _refunds(server: str, intent_id: str) -> list[int]:
    page = requests.get(
        f"{server}/v1/refunds",
        params={"payment_intent": intent_id},
        auth=(API_KEY, ""),
        timeout=5,
    ).json()
    return [r["amount"] for r in page["data"]]


def _attempts(session: Session, job_id: int) -> list[tuple[str, str | None]]:
    rows = session.scalars(
        sa.select(PaymentAttempt)
        .where(PaymentAttempt.job_id == job_id)
        .order_by(PaymentAttempt.number)
    ).all()
    return [(a.outcome.value, a.idempotency_key) for a in rows]


def _new_card(session: Session, job: Job, method: str) -> None:
    consumer = session.get(Consumer, job.consumer_id)
    assert consumer is not None
    consumer.payment_method = method  # PATCH /v1/consumers/me
    session.flush()


def test_charges_declines_a_new_card_an_operator_retry_and_a_refund_match_stripes_ledger(
    session: Session, stripe: tuple[StripeGateway, Faults, Settings], stripe_server: str
) -> None:
    paid = _completed(session, "pm_card_visa")
    run_step(session, Step.PAY, paid.id, _ctx(stripe, T0))
    run_step(session, Step.REQUEST_REVIEWS, paid.id, _ctx(stripe, T0))
    (intent,) = _intents(stripe_server, paid.id)
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == paid.id))
    assert payment is not None and payment.gateway_charge_id == intent["id"]
    assert (intent["status"], intent["amount"], intent["currency"]) == (
        "succeeded",
        paid.price_cents,
        "usd",
    )
    assert intent["metadata"]["gigco_intent"] == f"job-{paid.id}-intent-1"

    # Declined, then the consumer's new card: a new PaymentIntent under a new key.
    carded = _completed(session, "pm_card_chargeDeclined")
    (due,) = run_step(session, Step.PAY, carded.id, _ctx(stripe, T0))
    _new_card(session, carded, "pm_card_visa")
    run_step(session, Step.PAY, carded.id, _ctx(stripe, due.at))
    assert _attempts(session, carded.id) == [
        ("declined", f"job-{carded.id}-intent-1"),
        ("succeeded", f"job-{carded.id}-intent-2"),
    ]
    assert [i["status"] for i in _intents(stripe_server, carded.id)] == [
        "requires_payment_method",
        "succeeded",
    ]

    # Declined to payment_failed; the operator retries with a new card: a new intent.
    retried = _completed(session, "pm_card_chargeDeclined")
    now = T0
    for _ in range(3):
        dues = run_step(session, Step.PAY, retried.id, _ctx(stripe, now))
        now = dues[0].at if dues else now
    assert session.get(Job, retried.id, populate_existing=True).status == S.PAYMENT_FAILED  # type: ignore[union-attr]
    _new_card(session, retried, "pm_card_visa")
    operator.retry(session, retried.id, _ctx(stripe, now), "new card on file")
    session.flush()
    run_step(session, Step.PAY, retried.id, _ctx(stripe, now))
    assert [i["status"] for i in _intents(stripe_server, retried.id)] == [
        "requires_payment_method"
    ] * 3 + ["succeeded"]

    # A dispute refunded through Stripe's Refund API, once however often it is run.
    consumer = Principal(Role.CONSUMER, paid.consumer_id)
    disputes.open_dispute(session, paid.id, consumer, _ctx(stripe, T0), reason="Leaks.")
    dispute = disputes.resolve_dispute(
        session, paid.id, Principal(Role.OPERATOR), _ctx(stripe, T0), refund_cents=700, note="Half"
    )
    assert disputes.take_refund(session, dispute.id, _ctx(stripe, T0))
    assert not disputes.take_refund(session, dispute.id, _ctx(stripe, T0 + dt.timedelta(hours=1)))
    assert _refunds(stripe_server, intent["id"]) == [700]

    # Finance's export says what Stripe holds.
    jobs = (paid.id, carded.id, retried.id)
    held = [i for j in jobs for i in _intents(stripe_server, j) if i["status"] == "succeeded"]
    days = ledger.ledger_days(session)
    assert sum(d.charged_cents for d in days) == sum(i["amount"] for i in held)
    assert sum(d.refunded_cents for d in days) == sum(
        sum(_refunds(stripe_server, i["id"])) for i in held
    )


def test_a_confirmation_whose_answer_is_lost_is_read_back_not_charged_again(
    session: Session, stripe: tuple[StripeGateway, Faults, Settings], stripe_server: str
) -> None:
    """The processor charged, the answer never came (a timeout after sending): the next
    attempt of the same intent reads the PaymentIntent back and records the charge."""
    _, faults, _ = stripe
    job = _completed(session, "pm_card_visa")
    faults.next_on("/confirm", "lost")
    (due,) = run_step(session, Step.PAY, job.id, _ctx(stripe, T0))
    faults.release.set()
    assert [i["status"] for i in _intents(stripe_server, job.id)] == ["succeeded"]
    run_step(session, Step.PAY, job.id, _ctx(stripe, due.at))
    key = f"job-{job.id}-intent-1"
    assert _attempts(session, job.id) == [("error", key), ("succeeded", key)]
    assert [i["status"] for i in _intents(stripe_server, job.id)] == ["succeeded"]
    assert faults.count("POST", "/confirm") == 1


def test_a_500_then_a_200_charges_once(
    session: Session, stripe: tuple[StripeGateway, Faults, Settings], stripe_server: str
) -> None:
    _, faults, _ = stripe
    job = _completed(session, "pm_card_visa")
    faults.next_on("/v1/payment_intents", "500")  # the creation
    (due,) = run_step(session, Step.PAY, job.id, _ctx(stripe, T0))
    faults.next_on("/confirm", "500")  # then the confirmation
    (due,) = run_step(session, Step.PAY, job.id, _ctx(stripe, due.at))
    run_step(session, Step.PAY, job.id, _ctx(stripe, due.at))
    key = f"job-{job.id}-intent-1"
    assert _attempts(session, job.id) == [("error", key), ("error", key), ("succeeded", key)]
    assert [i["status"] for i in _intents(stripe_server, job.id)] == ["succeeded"]


def test_a_run_that_died_between_charging_and_recording_is_found_by_the_next(
    session: Session, stripe: tuple[StripeGateway, Faults, Settings], stripe_server: str
) -> None:
    """A worker killed after Stripe charged and before the outcome was written: once the
    claim's lease is over, the next run repeats the intent, finds the charge, records it."""
    gateway, faults, settings = stripe
    job = _completed(session, "pm_card_visa")
    claim = payments.claim_payment(session, job.id, _ctx(stripe, T0), token="killed")
    assert isinstance(claim, payments.Claim)
    session.flush()
    payments.charge(gateway, claim)  # sent and charged; the worker dies before recording
    assert _attempts(session, job.id) == []
    assert run_step(session, Step.PAY, job.id, _ctx(stripe, T0)) != []  # the lease stands
    later = T0 + dt.timedelta(seconds=settings.payment_lease_seconds + 1)
    run_step(session, Step.PAY, job.id, _ctx(stripe, later))
    assert _attempts(session, job.id) == [("succeeded", claim.idempotency_key)]
    assert [i["status"] for i in _intents(stripe_server, job.id)] == ["succeeded"]
    assert faults.count("POST", "/confirm") == 1


def test_an_in_doubt_refund_is_found_not_made_twice(
    session: Session, stripe: tuple[StripeGateway, Faults, Settings], stripe_server: str
) -> None:
    _, faults, settings = stripe
    job = _completed(session, "pm_card_visa")
    run_step(session, Step.PAY, job.id, _ctx(stripe, T0))
    run_step(session, Step.REQUEST_REVIEWS, job.id, _ctx(stripe, T0))
    consumer = Principal(Role.CONSUMER, job.consumer_id)
    disputes.open_dispute(session, job.id, consumer, _ctx(stripe, T0), reason="No-show")
    dispute = disputes.resolve_dispute(
        session, job.id, Principal(Role.OPERATOR), _ctx(stripe, T0), refund_cents=999, note="All"
    )
    faults.next_on("/v1/refunds", "lost")
    assert not disputes.take_refund(session, dispute.id, _ctx(stripe, T0))
    faults.release.set()
    later = T0 + dt.timedelta(seconds=settings.payment_lease_seconds + 1)
    assert disputes.take_refund(session, dispute.id, _ctx(stripe, later))
    (intent,) = _intents(stripe_server, job.id)
    assert _refunds(stripe_server, intent["id"]) == [999]
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job.id))
    assert payment is not None and payment.refunded_cents == 999


def test_a_late_cancel_fee_through_stripe_declined_then_charged_once_under_its_own_keys(
    session: Session, stripe: tuple[StripeGateway, Faults, Settings], stripe_server: str
) -> None:
    """The fee is a charge like the price's: its own PaymentIntents (reference and keys), a
    decline giving way to a new intent with the consumer's new card, a lost confirmation read
    back rather than charged again; the job stays cancelled throughout."""
    _, faults, settings = stripe
    owner = f.consumer(session, payment_method="pm_card_chargeDeclined")
    job = f.job(
        session,
        owner,
        status=S.SCHEDULED,
        worker_id=f.worker(session).id,
        start=T0 + dt.timedelta(hours=2),
        policy_version=policies.current(session, settings).version,  # one with the fee
    )
    consumer = Principal(Role.CONSUMER, owner.id)
    _, dues = actions.cancel(session, job.id, consumer, _ctx(stripe, T0))
    assert dues and dues[0].step == Step.LATE_CANCEL_FEE
    (due,) = run_step(session, Step.LATE_CANCEL_FEE, job.id, _ctx(stripe, T0))  # declined
    _new_card(session, job, "pm_card_visa")
    faults.next_on("/confirm", "lost")
    (due,) = run_step(session, Step.LATE_CANCEL_FEE, job.id, _ctx(stripe, due.at))  # in doubt
    faults.release.set()
    assert run_step(session, Step.LATE_CANCEL_FEE, job.id, _ctx(stripe, due.at)) == []
    fee = ((job.subtotal_cents or 0) * 20 + 50) // 100  # 20 %, half up
    first, second = (f"job-{job.id}-late-cancel-fee-{n}" for n in (1, 2))
    assert _attempts(session, job.id) == [
        ("declined", first),
        ("error", second),
        ("succeeded", second),
    ]
    held = _intents(stripe_server, job.id, cancel_fees.fee_reference(job.id))
    assert [(i["status"], i["amount"]) for i in held] == [
        ("requires_payment_method", fee),
        ("succeeded", fee),
    ]
    assert _intents(stripe_server, job.id) == []  # nothing under the price's reference
    assert faults.count("POST", "/confirm") == 2
    assert session.get(Job, job.id, populate_existing=True).status == S.CANCELLED  # type: ignore[union-attr]
    days = ledger.ledger_days(session)
    assert sum(d.late_cancel_fee_cents for d in days) == fee
