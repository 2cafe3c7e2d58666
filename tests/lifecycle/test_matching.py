"""Who may be offered a job, and in what order (lifecycle.md, "Matching"): each test runs on
PostgreSQL and on the embedded SQLite default, which share the ranking statement."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.matching import MAX_SERVICE_RADIUS_KM, candidates
from gigco.models import JobStatus, OpportunityStatus, Worker
from tests import factories as f


def ids(either_session: Session, job) -> list[int]:  # type: ignore[no-untyped-def]
    return [c.worker_id for c in candidates(either_session, job)]


def test_ranks_by_rating_then_distance_then_id(either_session: Session) -> None:
    near_unrated = f.worker(either_session, at=(52.521, 13.405))
    far_top = f.worker(either_session, at=(52.60, 13.405), rating_sum=10, rating_count=2)  # 5.0
    near_top = f.worker(either_session, at=(52.53, 13.405), rating_sum=5, rating_count=1)  # 5.0
    middling = f.worker(either_session, at=(52.52, 13.405), rating_sum=7, rating_count=2)  # 3.5
    low = f.worker(either_session, at=(52.5201, 13.405), rating_sum=1, rating_count=1)  # 1.0
    twin_b = f.worker(either_session, at=(52.50, 13.405))
    twin_a = f.worker(either_session, at=(52.50, 13.405))
    job = f.job(either_session, status=JobStatus.ACCEPTED, at=(52.52, 13.405))
    ranked = candidates(either_session, job)
    assert [c.worker_id for c in ranked] == [
        near_top.id,
        far_top.id,
        middling.id,
        low.id,
        near_unrated.id,
        min(twin_a.id, twin_b.id),
        max(twin_a.id, twin_b.id),
    ]
    assert [c.rating for c in ranked] == [5.0, 5.0, 3.5, 1.0, None, None, None]
    assert [round(c.distance_km, 3) for c in ranked] == [1.112, 8.896, 0.0, 0.011, 0.111] + [
        2.224
    ] * 2
    # Matching's own question (PostgreSQL answers it from the best-rated group alone).
    assert candidates(either_session, job, limit=1) == ranked[:1]
    assert candidates(either_session, job, limit=3) == ranked[:3]


def test_a_rating_of_zero_is_still_rated(either_session: Session) -> None:
    unrated = f.worker(either_session, at=(52.521, 13.405))
    rated_zero = f.worker(either_session, at=(52.60, 13.405), rating_sum=0, rating_count=1)
    job = f.job(either_session, status=JobStatus.ACCEPTED, at=(52.52, 13.405))
    assert ids(either_session, job) == [rated_zero.id, unrated.id]


def test_filters_skill_availability_and_radius(either_session: Session) -> None:
    ok = f.worker(either_session)
    f.worker(either_session, skills=("cleaning",))
    f.worker(either_session, available=False)
    f.worker(either_session, at=(48.8566, 2.3522))  # Paris: 878 km away
    f.worker(either_session, at=(52.75, 13.405), service_radius_km=20)  # 25.6 km away, 20 km radius
    wide = f.worker(either_session, at=(52.75, 13.405), service_radius_km=30)
    job = f.job(either_session, status=JobStatus.ACCEPTED)
    assert ids(either_session, job) == [ok.id, wide.id]


def test_excludes_workers_busy_in_an_overlapping_window(either_session: Session) -> None:
    start = dt.datetime(2031, 5, 1, 10, tzinfo=dt.UTC)
    busy, free_after, free_done = (
        f.worker(either_session),
        f.worker(either_session),
        f.worker(either_session),
    )
    f.job(
        either_session,
        status=JobStatus.SCHEDULED,
        worker_id=busy.id,
        start=start + dt.timedelta(hours=1),
    )
    f.job(
        either_session,
        status=JobStatus.IN_PROGRESS,
        worker_id=free_after.id,
        start=start + dt.timedelta(hours=2),
    )  # starts exactly when ours ends
    f.job(either_session, status=JobStatus.CLOSED, worker_id=free_done.id, start=start)
    job = f.job(either_session, status=JobStatus.ACCEPTED, start=start, hours=2)
    assert ids(either_session, job) == sorted([free_after.id, free_done.id])


@pytest.mark.parametrize("status", list(OpportunityStatus))
def test_a_worker_is_offered_a_job_at_most_once(either_session: Session, status) -> None:  # type: ignore[no-untyped-def]
    asked, fresh = f.worker(either_session), f.worker(either_session)
    job = f.job(either_session, status=JobStatus.ACCEPTED)
    f.opportunity(either_session, job, asked, status=status, expires_at=job.created_at)
    assert ids(either_session, job) == [fresh.id]


def test_a_radius_stored_past_the_cap_reaches_only_as_far_as_the_cap(
    either_session: Session,
) -> None:
    """Set in the database directly (sign-up and profile changes refuse it): 1,000 km serves
    as ``MAX_SERVICE_RADIUS_KM`` (100 km)."""
    within = f.worker(either_session, at=(53.3, 13.405))  # 86.7 km north of the job
    beyond = f.worker(either_session, at=(53.5, 13.405))  # 109 km north
    for worker in (within, beyond):
        either_session.execute(
            sa.update(Worker).where(Worker.id == worker.id).values(service_radius_km=1_000)
        )
    job = f.job(either_session, status=JobStatus.ACCEPTED)
    assert ids(either_session, job) == [within.id]
    assert MAX_SERVICE_RADIUS_KM == 100
