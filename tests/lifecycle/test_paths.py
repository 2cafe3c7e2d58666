"""Every terminal path, and the matching hand-offs, over HTTP with the live worker."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.config import Settings
from gigco.models import Consumer
from tests.brokers import both_brokers
from tests.harness.http import Api
from tests.harness.polling import wait_for


def at(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def event(api: Api, job_id: int, type_: str) -> dict[str, Any]:
    return next(e for e in api.events(job_id) if e["type"] == type_)


def opportunities(api: Api, worker: dict[str, Any]) -> list[dict[str, Any]]:
    return api.client.get("/v1/opportunities", headers=worker["headers"]).json


def offered_job(api: Api, consumer: dict[str, Any] | None = None, **fields: Any) -> int:
    consumer = consumer or api.consumer()
    job_id = api.post_job(consumer, **fields)["id"]
    api.wait_status(job_id, "offered")
    return job_id


def test_consumer_rejects_the_offer(api: Api) -> None:
    consumer = api.consumer()
    job_id = offered_job(api, consumer)
    r = api.signal(job_id, "offer/reject", consumer)
    assert (r.status_code, r.json["status"]) == (200, "rejected")
    again = api.signal(job_id, "offer/accept", consumer)
    assert again.status_code == 409
    assert again.json["current_status"] == "rejected"


@both_brokers  # a deadline armed as an ETA task: native delayed delivery on RabbitMQ
def test_offer_expires_on_time_and_the_consumer_is_told(api: Api, settings: Settings) -> None:
    consumer = api.consumer()
    job_id = offered_job(api, consumer)
    job = api.wait_status(job_id, "expired", timeout=settings.offer_ttl_seconds + 5)
    lateness = at(event(api, job_id, "expired")["created_at"]) - at(job["offer_expires_at"])
    assert dt.timedelta(0) <= lateness < dt.timedelta(seconds=1)
    kinds = [
        n["kind"] for n in api.client.get("/v1/notifications", headers=consumer["headers"]).json
    ]
    assert kinds[0] == "expiry"


def test_cancel_after_scheduling_tells_the_worker(api: Api) -> None:
    consumer, worker = api.consumer(), api.worker()
    job_id = offered_job(api, consumer)
    api.signal(job_id, "offer/accept", consumer)
    wait_for(lambda: opportunities(api, worker), what="an opportunity")
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    r = api.signal(job_id, "cancel", consumer)
    assert (r.status_code, r.json["status"]) == (200, "cancelled")
    notes = api.client.get("/v1/notifications", headers=worker["headers"]).json
    assert notes[0]["kind"] == "cancellation"
    assert api.signal(job_id, "start", worker).json["current_status"] == "cancelled"


def test_no_worker_after_the_last_round_with_rounds_spaced_by_the_base(
    api: Api, settings: Settings
) -> None:
    consumer = api.consumer()
    job_id = offered_job(api, consumer, category="gardening")
    api.signal(job_id, "offer/accept", consumer)
    api.wait_status(job_id, "no_worker", timeout=10)
    events = api.events(job_id)
    types = [e["type"] for e in events]
    assert types.count("matching_round_started") == settings.match_max_rounds
    ended = next(e for e in events if e["type"] == "matching_round_ended")
    second = [e for e in events if e["type"] == "matching_round_started"][1]
    gap = at(second["created_at"]) - at(ended["created_at"])
    base = dt.timedelta(seconds=settings.match_retry_base_seconds)
    assert base <= gap < base + dt.timedelta(seconds=1)
    assert types[-1] == "no_worker"
    notes = api.client.get("/v1/notifications", headers=consumer["headers"]).json
    assert notes[0]["kind"] == "no_worker"


def test_decline_passes_the_job_to_the_next_worker(api: Api) -> None:
    consumer = api.consumer()
    first = api.worker(location={"lat": 52.53, "lng": 13.41})
    second = api.worker(location={"lat": 52.60, "lng": 13.41})
    job_id = offered_job(api, consumer)
    api.signal(job_id, "offer/accept", consumer)
    wait_for(lambda: opportunities(api, first), what="the nearer worker's opportunity")
    assert opportunities(api, second) == []
    assert api.signal(job_id, "opportunity/decline", first).status_code == 200
    wait_for(lambda: opportunities(api, second), what="the opportunity to pass on")
    # Retries after the answer: the decliner and the winner hear the same 409.
    for retry in ("opportunity/accept", "opportunity/decline"):
        r = api.signal(job_id, retry, first)
        assert (r.status_code, r.json["message"]) == (409, "This opportunity is no longer open.")
    assert api.signal(job_id, "opportunity/accept", second).status_code == 200
    for retry in ("opportunity/accept", "opportunity/decline"):
        r = api.signal(job_id, retry, second)
        assert (r.status_code, r.json["message"]) == (409, "This opportunity is no longer open.")
    # A worker who never held one still cannot tell the job exists.
    stranger = api.worker(location={"lat": 52.53, "lng": 13.41})
    assert api.signal(job_id, "opportunity/accept", stranger).status_code == 404


def test_an_unanswered_opportunity_expires_on_time_and_passes_on(
    api: Api, settings: Settings
) -> None:
    consumer = api.consumer()
    first = api.worker(location={"lat": 52.53, "lng": 13.41})
    second = api.worker(location={"lat": 52.60, "lng": 13.41})
    job_id = offered_job(api, consumer)
    api.signal(job_id, "offer/accept", consumer)
    (opp,) = wait_for(lambda: opportunities(api, first), what="the first opportunity")
    wait_for(
        lambda: opportunities(api, second),
        timeout=settings.opportunity_ttl_seconds + 5,
        what="the opportunity to pass on after expiry",
    )
    lateness = at(event(api, job_id, "opportunity_expired")["created_at"]) - at(opp["expires_at"])
    assert dt.timedelta(0) <= lateness < dt.timedelta(seconds=1)
    late = api.signal(job_id, "opportunity/accept", first)
    assert (late.status_code, late.json["message"]) == (409, "This opportunity is no longer open.")


def test_payment_fails_then_the_operator_retries_and_it_is_paid(
    api: Api, sessions: sessionmaker[Session], settings: Settings
) -> None:
    consumer = api.consumer(payment_method="pm_card_chargeDeclined")
    worker = api.worker()
    job_id = offered_job(api, consumer)
    api.signal(job_id, "offer/accept", consumer)
    wait_for(lambda: opportunities(api, worker), what="an opportunity")
    api.signal(job_id, "opportunity/accept", worker)
    api.wait_status(job_id, "scheduled")
    api.signal(job_id, "start", worker)
    api.signal(job_id, "complete", worker)
    api.wait_status(job_id, "payment_failed")
    payment = api.client.get(f"/v1/jobs/{job_id}/payment", headers=consumer["headers"]).json
    assert payment["status"] == "failed"
    assert [a["outcome"] for a in payment["attempts"]] == ["declined"] * (
        settings.payment_max_attempts
    )
    times = [at(a["attempted_at"]) for a in payment["attempts"]]
    base = settings.payment_retry_base_seconds
    for n, (before, after) in enumerate(itertools.pairwise(times)):
        assert (after - before).total_seconds() >= base * 2**n
    assert api.signal(job_id, "payment/retry", consumer).status_code == 403
    with sessions.begin() as s:  # the consumer fixes their card
        s.execute(
            sa.update(Consumer)
            .where(Consumer.id == consumer["id"])
            .values(payment_method="pm_card_visa")
        )
    r = api.signal(job_id, "payment/retry")
    assert (r.status_code, r.json["status"]) == (200, "completed")
    api.wait_status(job_id, "review_pending")
    payment = api.client.get(f"/v1/jobs/{job_id}/payment", headers=consumer["headers"]).json
    assert payment["status"] == "succeeded"
    assert [a["outcome"] for a in payment["attempts"]][-1] == "succeeded"
    assert api.signal(job_id, "payment/retry").json["current_status"] == "review_pending"


def test_reviews_close_at_the_deadline_with_what_arrived(api: Api, settings: Settings) -> None:
    consumer, worker = api.consumer(), api.worker()
    job_id = offered_job(api, consumer)
    api.signal(job_id, "offer/accept", consumer)
    wait_for(lambda: opportunities(api, worker), what="an opportunity")
    api.signal(job_id, "opportunity/accept", worker)
    api.wait_status(job_id, "scheduled")
    api.signal(job_id, "start", worker)
    api.signal(job_id, "complete", worker)
    job = api.wait_status(job_id, "review_pending")
    api.client.post(f"/v1/jobs/{job_id}/reviews", json={"rating": 3}, headers=worker["headers"])
    closed_job = api.wait_status(job_id, "closed", timeout=settings.review_window_seconds + 5)
    lateness = at(event(api, job_id, "closed")["created_at"]) - at(job["review_deadline"])
    assert dt.timedelta(0) <= lateness < dt.timedelta(seconds=1)
    assert closed_job["status"] == "closed"
    me = api.client.get("/v1/me", headers=consumer["headers"]).json
    assert (me["rating"], me["review_count"]) == (3.0, 1)
