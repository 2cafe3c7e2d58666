"""A consumer who cancels late pays the worker a fee: over HTTP with the live worker and beat.

The fee is the policy's percent (20 by default) of the subtotal, for a cancel with a worker
assigned and the start within the policy's window (24 h by default); a job starting in two
hours is cancelled late, one starting in two days early.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle import cancel_fees, payments
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import SimulatedGateway
from gigco.models import Job, Payment, SimulatedCharge
from tests.harness.console import Ops
from tests.harness.http import Api
from tests.harness.polling import race, wait_for


def opportunities(api: Api, worker: dict[str, Any]) -> list[dict[str, Any]]:
    return api.client.get("/v1/opportunities", headers=worker["headers"]).json


def scheduled(api: Api, place: dict[str, float], *, hours_ahead: float, **consumer: Any) -> Any:
    """A consumer, a worker at ``place``, and the job starting ``hours_ahead`` they took."""
    owner, worker = api.consumer(**consumer), api.worker(location=place)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours_ahead)
    job_id = api.post_job(owner, start=start, location=place)["id"]
    api.wait_status(job_id, "offered")
    api.signal(job_id, "offer/accept", owner)
    wait_for(lambda: opportunities(api, worker), what="the worker's opportunity")
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    return job_id, owner, worker


def payment(api: Api, job_id: int, party: dict[str, Any] | None = None) -> Any:
    headers = party["headers"] if party else api.admin
    return api.client.get(f"/v1/jobs/{job_id}/payment", headers=headers)


def fee_charges(sessions: sessionmaker[Session], job_id: int) -> list[SimulatedCharge]:
    """What the simulated gateway took for the job's fee (declines have no charge id)."""
    with sessions() as s:
        return list(
            s.scalars(
                sa.select(SimulatedCharge).where(
                    SimulatedCharge.reference == cancel_fees.fee_reference(job_id),
                    SimulatedCharge.charge_id.is_not(None),
                )
            )
        )


def kinds(api: Api, party: dict[str, Any]) -> dict[str, dict[str, Any]]:
    notes = api.client.get("/v1/notifications", headers=party["headers"]).json
    return {n["kind"]: n["data"] for n in notes}


def test_a_late_cancel_answers_at_once_and_pays_the_worker_the_fee_once(
    api: Api, sessions: sessionmaker[Session], ops: Ops
) -> None:
    job_id, consumer, worker = scheduled(api, {"lat": 30.0, "lng": -60.0}, hours_ahead=2)
    subtotal = api.job(job_id)["subtotal_cents"]
    fee = (subtotal * 20 + 50) // 100  # 20 %, half up

    r = api.signal(job_id, "cancel", consumer)
    assert (r.status_code, r.json["status"]) == (200, "cancelled")
    charged = wait_for(
        lambda: (p := payment(api, job_id, consumer).json).get("status") == "succeeded" and p,
        what="the late-cancellation fee charged",
    )
    # The consumer: what they paid, no platform fee on it, and no key or gateway text.
    assert {k: charged[k] for k in ("kind", "amount_cents", "fee_cents")} == {
        "kind": "late_cancel_fee",
        "amount_cents": fee,
        "fee_cents": 0,
    }
    assert charged["worker_earnings_cents"] == fee
    assert "idempotency_key" not in charged
    assert [set(a) for a in charged["attempts"]] == [{"number", "attempted_at", "outcome"}]
    # The worker: what they earn, never the amount charged or how the attempts ended.
    earned = payment(api, job_id, worker).json
    assert (earned["kind"], earned["status"], earned["worker_earnings_cents"]) == (
        "late_cancel_fee",
        "succeeded",
        fee,
    )
    assert "amount_cents" not in earned and "outcome" not in earned["attempts"][0]
    # Its own key, never the price's.
    operator = payment(api, job_id).json
    assert operator["idempotency_key"] == f"job-{job_id}-late-cancel-fee-1"
    (taken,) = fee_charges(sessions, job_id)
    assert (taken.idempotency_key, taken.amount_cents) == (operator["idempotency_key"], fee)

    history = api.events(job_id)
    (cancelled,) = [e for e in history if e["type"] == "cancelled"]
    assert cancelled["data"]["late_cancel_fee_cents"] == fee
    assert [e["type"] for e in history].count("late_cancel_fee_charged") == 1
    assert kinds(api, consumer)["late_cancel_fee"] == {"amount_cents": fee}
    assert kinds(api, worker)["late_cancel_fee"] == {"earnings_cents": fee}
    assert kinds(api, worker)["cancellation"] == {"late_cancel_fee_cents": fee}
    # The finance export counts it once, as the worker's earnings.
    totals = ops.page("/ops/finance.csv").text.strip().splitlines()
    header, total = totals[0].split(","), totals[-1].split(",")
    row = dict(zip(header, total, strict=True))
    assert (row["late_cancel_fees"], row["late_cancel_fee_cents"]) == ("1", str(fee))


def _run_fee(
    sessions: sessionmaker[Session], gateway: SimulatedGateway, ctx: StepContext, job_id: int
) -> str:
    """One run of the fee's step as the worker runs it: claim, the gateway, record."""
    with sessions.begin() as s:
        claim = cancel_fees.claim_fee(s, job_id, ctx, token=None)
    if not isinstance(claim, payments.Claim):
        return "nothing to do"
    result = payments.charge(gateway, claim)
    with sessions.begin() as s:
        cancel_fees.record_fee(s, claim, result, ctx)
    return result.outcome.value


def test_racing_and_redelivered_runs_of_the_fee_charge_it_once(
    api: Api, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Runs released together with the live worker's, half of them as if its lease had run out
    (a redelivery after a worker died): one charge at the gateway, one charged event."""
    job_id, consumer, _ = scheduled(api, {"lat": 31.0, "lng": -60.0}, hours_ahead=2)
    gateway = SimulatedGateway(sessions)
    lease = dt.timedelta(seconds=settings.payment_lease_seconds + 1)
    fast = dataclasses.replace(settings, payment_max_attempts=3)

    assert api.signal(job_id, "cancel", consumer).status_code == 200
    results = race(
        6,
        lambda i: _run_fee(
            sessions,
            gateway,
            StepContext(settings=fast, now=clock.now() + (lease if i % 2 else dt.timedelta())),
            job_id,
        ),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    wait_for(
        lambda: payment(api, job_id).json.get("status") == "succeeded",
        what="the fee charged",
    )
    # Redelivered once more after it was charged: nothing to do.
    later = StepContext(settings=fast, now=clock.now() + lease)
    assert _run_fee(sessions, gateway, later, job_id) == "nothing to do"
    assert len(fee_charges(sessions, job_id)) == 1
    assert [e["type"] for e in api.events(job_id)].count("late_cancel_fee_charged") == 1
    attempts = payment(api, job_id).json["attempts"]
    assert [a["outcome"] for a in attempts].count("succeeded") == 1
    with sessions() as s:  # nothing more is due on the cancelled job
        job = s.get(Job, job_id)
        assert job is not None and (job.step_due_at, job.timer_at) == (None, None)


def test_an_early_cancel_is_free(api: Api, sessions: sessionmaker[Session]) -> None:
    job_id, consumer, worker = scheduled(api, {"lat": 32.0, "lng": -60.0}, hours_ahead=48)
    r = api.signal(job_id, "cancel", consumer)
    assert (r.status_code, r.json["status"]) == (200, "cancelled")
    # Decided by the cancel itself, in its transaction: no fee, no payment, nothing due.
    assert payment(api, job_id, consumer).status_code == 404
    (cancelled,) = [e for e in api.events(job_id) if e["type"] == "cancelled"]
    assert "late_cancel_fee_cents" not in cancelled["data"]
    assert kinds(api, worker)["cancellation"] == {}
    with sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None and (job.step_due_at, job.timer_at) == (None, None)
        assert s.scalar(sa.select(Payment).where(Payment.job_id == job_id)) is None


def test_a_refused_fee_card_does_not_undo_the_cancel(
    api: Api, sessions: sessionmaker[Session], settings: Settings, ops: Ops
) -> None:
    job_id, consumer, worker = scheduled(
        api, {"lat": 33.0, "lng": -60.0}, hours_ahead=2, payment_method="pm_card_chargeDeclined"
    )
    assert api.signal(job_id, "cancel", consumer).status_code == 200
    failed = wait_for(
        lambda: next(
            (e for e in api.events(job_id) if e["type"] == "late_cancel_fee_failed"), None
        ),
        what="the fee given up after the retry budget",
    )
    budget = settings.payment_max_attempts
    assert failed["data"]["attempts"] == budget
    assert api.job(job_id)["status"] == "cancelled"  # the cancel stands
    types = [e["type"] for e in api.events(job_id)]
    assert types.count("late_cancel_fee_refused") == budget
    assert "late_cancel_fee_charged" not in types
    # Each refusal was answered for sure: the next attempt a new intent, a new key.
    operator = payment(api, job_id).json
    assert operator["status"] == "failed"
    keys = [a["idempotency_key"] for a in operator["attempts"]]
    assert keys == [f"job-{job_id}-late-cancel-fee-{n}" for n in range(1, budget + 1)]
    assert all(a["detail"] for a in operator["attempts"])  # the gateway's text: the operator's
    seen = payment(api, job_id, consumer).json
    assert [a["outcome"] for a in seen["attempts"]] == ["declined"] * budget
    assert all("detail" not in a for a in seen["attempts"])
    earned = payment(api, job_id, worker).json
    assert (earned["status"], earned["worker_earnings_cents"]) == (
        "failed",
        operator["amount_cents"],
    )
    assert all(set(a) == {"number", "attempted_at"} for a in earned["attempts"])
    # Both told; nothing more is due; operators see it on the job's page.
    assert kinds(api, consumer)["late_cancel_fee_failed"] == {
        "amount_cents": operator["amount_cents"]
    }
    assert kinds(api, worker)["late_cancel_fee_failed"] == {
        "earnings_cents": operator["amount_cents"]
    }
    assert fee_charges(sessions, job_id) == []
    with sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None and (job.step_due_at, job.timer_at) == (None, None)
    assert "late_cancel_fee_failed" in ops.page(f"/ops/jobs/{job_id}").text


def test_a_job_on_a_policy_from_before_the_fee_is_not_charged(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    job_id, consumer, _ = scheduled(api, {"lat": 34.0, "lng": -60.0}, hours_ahead=2)
    old = api.client.get("/v1/policies/1", headers=api.admin).json
    assert (old["late_cancel_window_seconds"], old["late_cancel_fee_percent"]) == (None, None)
    with sessions.begin() as s:  # as if created under version 1 (the migration's defaults)
        s.execute(sa.update(Job).where(Job.id == job_id).values(policy_version=1))
    assert api.signal(job_id, "cancel", consumer).status_code == 200
    assert payment(api, job_id, consumer).status_code == 404
    (cancelled,) = [e for e in api.events(job_id) if e["type"] == "cancelled"]
    assert "late_cancel_fee_cents" not in cancelled["data"]
