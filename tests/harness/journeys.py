"""Jobs driven over HTTP, through the live worker, to a known state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import Job
from tests.harness.http import Api
from tests.harness.polling import wait_for


def worked_job(api: Api, consumer: dict[str, Any], worker: dict[str, Any], **job: Any) -> int:
    """A job posted by ``consumer``, then taken, started and completed by ``worker``."""
    job_id: int = api.post_job(consumer, **job)["id"]
    api.wait_status(job_id, "offered")
    assert api.signal(job_id, "offer/accept", consumer).status_code == 200
    wait_for(
        lambda: api.client.get("/v1/opportunities", headers=worker["headers"]).json,
        what="an opportunity for the worker",
    )
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    assert api.signal(job_id, "start", worker).status_code == 200
    assert api.signal(job_id, "complete", worker).status_code == 200
    return job_id


def closed_job(
    api: Api,
    consumer: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
    **job: Any,
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """A job driven over HTTP from draft to closed; returns it with its consumer and worker."""
    consumer, worker = consumer or api.consumer(), worker or api.worker()
    job_id = worked_job(api, consumer, worker, **job)
    api.wait_status(job_id, "review_pending")
    for party, review in ((consumer, {"rating": 5, "comment": "Great"}), (worker, {"rating": 4})):
        r = api.client.post(f"/v1/jobs/{job_id}/reviews", json=review, headers=party["headers"])
        assert r.status_code == 201, r.json
    api.wait_status(job_id, "closed")
    return job_id, consumer, worker


def paid_job(
    api: Api, sessions: sessionmaker[Session], place: dict[str, float] | None = None
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """A paid job in review_pending whose review window is held an hour open (the tests' is
    4 s), with its consumer and worker; ``place`` (the worker's and the job's) keeps workers
    of other jobs away."""
    where = {"location": place} if place else {}
    consumer, worker = api.consumer(), api.worker(**where)
    job_id = worked_job(api, consumer, worker, **where)
    api.wait_status(job_id, "review_pending")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with sessions() as s, s.begin():
        s.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(review_deadline=later, timer_at=later, timer_armed_at=None)
        )
    return job_id, consumer, worker


def hold_offers(sessions: sessionmaker[Session], job_ids: Iterable[int]) -> None:
    """Move the open offers of ``job_ids`` an hour out: for tests whose many requests (a
    browser's clicks) would otherwise outlive the tests' 5 s offer (``GIGCO_OFFER_TTL_SECONDS``).
    A timer message already armed for the old deadline finds the new one and does nothing."""
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with sessions() as session, session.begin():
        session.execute(
            sa.update(Job)
            .where(Job.id.in_(list(job_ids)), Job.offer_expires_at.is_not(None))
            .values(offer_expires_at=later, timer_at=later, timer_armed_at=None)
        )
