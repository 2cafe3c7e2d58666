"""A worker withdraws from a job they took: over HTTP with the live worker, and raced."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.models import Job, JobStatus, Worker, WorkerStrike
from tests import factories as f
from tests.harness.console import Ops, csrf_from, table
from tests.harness.http import Api
from tests.harness.polling import race, wait_for

NEAR = {"lat": 52.53, "lng": 13.41}
FARTHER = {"lat": 52.60, "lng": 13.41}
ELSEWHERE = {"lat": 48.14, "lng": 11.58}  # Munich: serves none of these jobs


def opportunities(api: Api, worker: dict[str, Any]) -> list[dict[str, Any]]:
    return api.client.get("/v1/opportunities", headers=worker["headers"]).json


def assigned(
    api: Api,
    consumer: dict[str, Any],
    worker: dict[str, Any],
    status: str,
    place: dict[str, float] = NEAR,
) -> int:
    """A job at ``place`` that ``worker`` took, once it is in ``status``."""
    job_id = api.post_job(consumer, location=place)["id"]
    api.wait_status(job_id, "offered")
    api.signal(job_id, "offer/accept", consumer)
    wait_for(lambda: opportunities(api, worker), what="the nearer worker's opportunity")
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, status)
    return job_id


def test_a_withdrawal_rematches_to_another_worker_and_tells_the_consumer(
    api: Api, ops: Ops
) -> None:
    consumer = api.consumer()
    first, second = api.worker(location=NEAR), api.worker(location=FARTHER)
    job_id = assigned(api, consumer, first, "scheduled")
    # Not theirs to withdraw: the consumer (403), a stranger (404), the operator (403).
    assert api.signal(job_id, "withdraw", consumer).status_code == 403
    assert api.signal(job_id, "withdraw", api.worker(location=ELSEWHERE)).status_code == 404
    assert api.signal(job_id, "withdraw").status_code == 403

    r = api.signal(job_id, "withdraw", first)
    assert (r.status_code, r.json["status"], r.json["worker_id"]) == (200, "accepted", None)
    # A new round at once, and it passes the withdrawn worker by.
    wait_for(lambda: opportunities(api, second), what="the opportunity to pass on")
    assert api.signal(job_id, "opportunity/accept", second).status_code == 200
    api.wait_status(job_id, "scheduled")
    assert api.job(job_id)["worker_id"] == second["id"]
    types = [e["type"] for e in api.events(job_id)]
    withdrew = types.index("worker_withdrew")
    assert types[withdrew + 1 : withdrew + 3] == ["matching_round_started", "opportunity_offered"]
    assert types.count("worker_assigned") == 2
    # The withdrawn worker no longer sees the job; the consumer was told.
    assert api.client.get(f"/v1/jobs/{job_id}", headers=first["headers"]).status_code == 404
    kinds = [
        n["kind"] for n in api.client.get("/v1/notifications", headers=consumer["headers"]).json
    ]
    assert "withdrawal" in kinds
    # Counted on the worker, and shown to operators with the job's opportunities.
    rows = table(ops.page(f"/ops/jobs/{job_id}").text, "opportunities")
    mine = next(row for row in rows if row[0].startswith(f"#{first['id']} "))
    assert mine[1:3] == ["1", "0"]


def test_withdrawing_in_progress_is_a_conflict_naming_the_status(api: Api) -> None:
    consumer, worker = api.consumer(), api.worker(location=NEAR)
    job_id = assigned(api, consumer, worker, "scheduled")
    assert api.signal(job_id, "start", worker).status_code == 200
    r = api.signal(job_id, "withdraw", worker)
    assert (r.status_code, r.json["current_status"]) == (409, "in_progress")
    assert "in_progress" in r.json["message"]
    assert api.job(job_id)["status"] == "in_progress"


def test_a_job_on_a_policy_from_before_withdrawals_cannot_be_withdrawn(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    consumer, worker = api.consumer(), api.worker(location=NEAR)
    job_id = assigned(api, consumer, worker, "scheduled")
    assert api.client.get("/v1/policies/1", headers=api.admin).json["withdrawals"] is False
    with sessions.begin() as s:  # as if created under version 1 (the migration's defaults)
        s.execute(sa.update(Job).where(Job.id == job_id).values(policy_version=1))
    r = api.signal(job_id, "withdraw", worker)
    assert (r.status_code, r.json["current_status"]) == (409, "scheduled")
    assert "policy 1" in r.json["message"]
    assert api.job(job_id)["status"] == "scheduled"


def test_withdrawal_consumer_cancel_and_operator_cancel_race_with_one_winner(
    api: Api, app: Flask, ops: Ops
) -> None:
    outcomes: Counter[str] = Counter()
    clients = [app.test_client(), app.test_client()]  # one per racing thread
    for i in range(4):
        place = {"lat": 10.0 + i, "lng": 20.0}  # each round's own: no earlier worker serves it
        consumer, worker = api.consumer(), api.worker(location=place)
        job_id = assigned(api, consumer, worker, "scheduled", place)
        csrf = csrf_from(ops.page(f"/ops/jobs/{job_id}").text)

        def act(
            i: int,
            job_id: int = job_id,
            worker: Any = worker,
            consumer: Any = consumer,
            csrf: str = csrf,
        ) -> tuple[str, int]:
            if i == 0:
                r = clients[0].post(f"/v1/jobs/{job_id}/withdraw", headers=worker["headers"])
                return "withdraw", r.status_code
            if i == 1:
                r = clients[1].post(f"/v1/jobs/{job_id}/cancel", headers=consumer["headers"])
                return "consumer cancel", r.status_code
            r = ops.client.post(
                f"/ops/jobs/{job_id}/cancel", data={"csrf_token": csrf, "reason": "race"}
            )
            return "operator cancel", 200 if r.status_code == 303 else r.status_code

        results = dict(race(3, act))
        # Exactly one of them moved the scheduled job; the others found it moved on (409,
        # naming where), except that a consumer's cancel is still allowed after a
        # withdrawal put the job back to accepted (it is then a cancel of an accepted job).
        history = api.events(job_id)
        (first,) = [e for e in history if e["from_status"] == "scheduled"]
        assert first["type"] in ("worker_withdrew", "cancelled")
        assert [e["type"] for e in history].count("cancelled") <= 1
        ok = {who for who, code in results.items() if code == 200}
        assert all(results[who] == 409 for who in results if who not in ok), results
        assert len(ok & {"consumer cancel", "operator cancel"}) <= 1, results
        if first["type"] == "worker_withdrew":
            assert "withdraw" in ok
            outcomes["withdraw"] += 1
        else:
            assert results["withdraw"] == 409, results
            outcomes[first["actor"]] += 1
        final = api.job(job_id)["status"]
        assert (final == "cancelled") == bool(ok - {"withdraw"}), (results, final)
        rows = table(ops.page(f"/ops/jobs/{job_id}").text, "opportunities")
        assert rows[0][1] == ("1" if "withdraw" in ok else "0"), rows  # counted once, or not
    assert sum(outcomes.values()) == 4


def test_a_worker_who_withdrew_is_asked_after_an_equally_rated_one_farther_away(api: Api) -> None:
    place = {"lat": 30.0, "lng": 30.0}
    consumer = api.consumer()
    near, far = api.worker(location=place), api.worker(location={"lat": 30.05, "lng": 30.0})
    first = assigned(api, consumer, near, "scheduled", place)  # near is asked first: nearer
    assert api.signal(first, "withdraw", near).status_code == 200
    wait_for(lambda: opportunities(api, far), what="the first job passed on")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    second = api.post_job(consumer, location=place, start=start)["id"]
    api.wait_status(second, "offered")
    api.signal(second, "offer/accept", consumer)
    # Both unrated: one strike puts the nearer worker behind the farther one.
    offered = wait_for(
        lambda: [e for e in api.events(second) if e["type"] == "opportunity_offered"],
        what="the second job's first opportunity",
    )
    assert offered[0]["data"]["worker_id"] == far["id"]


def test_a_strike_older_than_the_policys_window_no_longer_lowers_a_workers_rank(
    api: Api, ops: Ops, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Only recent strikes rank (the policy's ``strike_window_seconds``): a withdrawal from
    before the window still shows on /ops, but the nearer worker is asked first again."""
    place = {"lat": 35.0, "lng": 30.0}
    consumer = api.consumer()
    near = api.worker(location=place)
    api.worker(location={"lat": 35.05, "lng": 30.0})  # farther, no strikes
    long_ago = clock.now() - dt.timedelta(seconds=settings.strike_window_seconds + 86400)
    with sessions.begin() as s:  # a withdrawal from before the window, counted as any
        old = f.job(s, status=JobStatus.CANCELLED, worker_id=near["id"])
        s.add(WorkerStrike(worker_id=near["id"], job_id=old.id, kind="withdrawal", at=long_ago))
        s.execute(sa.update(Worker).where(Worker.id == near["id"]).values(withdrawals=1))
    job_id = api.post_job(consumer, location=place)["id"]
    api.wait_status(job_id, "offered")
    api.signal(job_id, "offer/accept", consumer)
    offered = wait_for(
        lambda: [e for e in api.events(job_id) if e["type"] == "opportunity_offered"],
        what="the job's first opportunity",
    )
    assert offered[0]["data"]["worker_id"] == near["id"]
    rows = table(ops.page(f"/ops/jobs/{job_id}").text, "opportunities")
    mine = next(row for row in rows if row[0].startswith(f"#{near['id']} "))
    assert mine[1:3] == ["1", "0"]  # operators still see every withdrawal
