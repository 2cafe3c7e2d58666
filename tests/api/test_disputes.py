"""Disputes and refunds over HTTP with the live worker: one dispute per paid job, before its
review deadline; an operator's resolution refunds 0 to the price once through the gateway,
split between the platform's fee and the worker's earnings, shown to both parties."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import Job, SimulatedCharge, SimulatedRefund
from tests.api.helpers import assert_error
from tests.harness.http import Api
from tests.harness.journeys import paid_job
from tests.harness.polling import wait_for
from tests.harness.webhooks import receiving, register, verified

DISPUTE_TYPES = ["job.dispute_opened", "job.dispute_resolved", "job.refunded"]


def test_a_dispute_is_refunded_once_and_both_parties_see_the_split(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    job_id, consumer, worker = paid_job(api, sessions)
    with receiving() as receiver:
        hooks = {
            name: register(
                api, party["headers"], receiver.url(f"/{name}"), event_types=DISPUTE_TYPES
            )
            for name, party in (("consumer", consumer), ("worker", worker))
        }
        _dispute_and_refund(api, sessions, job_id, consumer, worker)
        for name, hook in hooks.items():
            got = wait_for(
                lambda n=name: len(receiver.at(f"/{n}", 204)) >= 3 and receiver.at(f"/{n}", 204),
                what=f"the {name}'s dispute webhooks",
            )
            messages = [verified(r, hook["secret"]) for r in got]
            assert [m["type"] for m in messages] == DISPUTE_TYPES
            refunded = messages[-1]["data"]["event"]["data"]
            assert set(refunded) == {
                "dispute_id",
                "refund_cents",
                "refund_fee_cents",
                "refund_earnings_cents",
            }


def _dispute_and_refund(
    api: Api,
    sessions: sessionmaker[Session],
    job_id: int,
    consumer: dict[str, Any],
    worker: dict[str, Any],
) -> None:
    c = api.client
    dispute = f"/v1/jobs/{job_id}/dispute"
    assert_error(c.post(dispute, json={"reason": "x"}, headers=worker["headers"]), 403)
    assert_error(c.post(dispute, json={"reason": " "}, headers=consumer["headers"]), 422, "reason")
    r = c.post(dispute, json={"reason": "The sink still leaks."}, headers=consumer["headers"])
    assert r.status_code == 201, r.json
    assert (r.json["status"], r.json["reason"], r.json["refund_cents"]) == (
        "open",
        "The sink still leaks.",
        None,
    )
    assert_error(c.post(dispute, json={"reason": "Again"}, headers=consumer["headers"]), 409)

    job = api.job(job_id)
    price, fee = job["price_cents"], job["fee_cents"]
    resolve = f"/v1/jobs/{job_id}/dispute/resolve"
    half = price // 2
    assert_error(
        c.post(resolve, json={"refund_cents": half, "note": "n"}, headers=consumer["headers"]), 403
    )
    too_much = {"refund_cents": price + 1, "note": "Too much"}
    assert_error(c.post(resolve, json=too_much, headers=api.admin), 422, "refund_cents")
    assert_error(c.post(resolve, json={"refund_cents": half}, headers=api.admin), 422, "note")
    r = c.post(resolve, json={"refund_cents": half, "note": "Half the work."}, headers=api.admin)
    assert r.status_code == 200, r.json
    platform = (half * fee * 2 + price) // (2 * price)  # the fee's share, rounded to the cent
    assert (r.json["status"], r.json["refund_cents"], r.json["refund_fee_cents"]) == (
        "resolved",
        half,
        platform,
    )
    assert r.json["refund_earnings_cents"] == half - platform
    again = {"refund_cents": 1, "note": "Once more"}
    assert_error(c.post(resolve, json=again, headers=api.admin), 409)

    done = wait_for(
        lambda: (
            (d := c.get(dispute, headers=consumer["headers"]).json)["refund_status"] == "succeeded"
            and d
        ),
        what="the refund to be taken",
    )
    assert done["refunded_at"] is not None
    for party in (consumer, worker):
        payment = c.get(f"/v1/jobs/{job_id}/payment", headers=party["headers"]).json
        assert (
            payment["refunded_cents"],
            payment["refunded_fee_cents"],
            payment["refunded_earnings_cents"],
        ) == (half, platform, half - platform)
        seen = c.get(f"/v1/jobs/{job_id}/events", headers=party["headers"]).json
        resolved = next(e for e in seen if e["type"] == "dispute_resolved")
        assert resolved["data"]["refund_earnings_cents"] == half - platform
        refunded = next(e for e in seen if e["type"] == "refunded")
        assert "refund_id" not in refunded["data"]
        notes = c.get("/v1/notifications", headers=party["headers"]).json
        kinds = {n["kind"] for n in notes if n.get("job_id") == job_id}
        assert {"dispute_opened", "dispute_resolved", "refund"} <= kinds, kinds
    with sessions() as s:
        charge_id = s.scalar(
            sa.select(SimulatedCharge.charge_id).where(
                SimulatedCharge.reference == f"job-{job_id}", SimulatedCharge.charge_id.is_not(None)
            )
        )
        refunds = s.scalars(
            sa.select(SimulatedRefund.amount_cents).where(SimulatedRefund.charge_id == charge_id)
        ).all()
    assert refunds == [half]  # taken once at the gateway


def test_no_dispute_before_payment_or_after_the_review_deadline(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    consumer = api.consumer()
    unpaid = api.post_job(consumer)["id"]
    body = {"reason": "Not done"}
    r = api.client.post(f"/v1/jobs/{unpaid}/dispute", json=body, headers=consumer["headers"])
    assert_error(r, 409)
    job_id, consumer, _ = paid_job(api, sessions)
    with sessions() as s, s.begin():
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        s.execute(sa.update(Job).where(Job.id == job_id).values(review_deadline=past))
    r = api.client.post(f"/v1/jobs/{job_id}/dispute", json=body, headers=consumer["headers"])
    assert "window" in assert_error(r, 409)["message"]
    r = api.client.post(
        f"/v1/jobs/{job_id}/dispute/resolve",
        json={"refund_cents": 0, "note": "x"},
        headers=api.admin,
    )
    assert_error(r, 404)  # no dispute to resolve
