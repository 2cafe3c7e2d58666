"""Who may be offered a job, and in what order (lifecycle.md, "Matching")."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from gigco.lifecycle.matching import candidates
from gigco.models import JobStatus, OpportunityStatus
from tests import factories as f


def ids(session: Session, job) -> list[int]:  # type: ignore[no-untyped-def]
    return [c.worker_id for c in candidates(session, job)]


def test_ranks_by_rating_then_distance_then_id(session: Session) -> None:
    near_unrated = f.worker(session, at=(52.521, 13.405))
    far_top = f.worker(session, at=(52.60, 13.405), rating_sum=10, rating_count=2)  # 5.0
    near_top = f.worker(session, at=(52.53, 13.405), rating_sum=5, rating_count=1)  # 5.0
    middling = f.worker(session, at=(52.52, 13.405), rating_sum=7, rating_count=2)  # 3.5
    twin_a = f.worker(session, at=(52.50, 13.405))
    twin_b = f.worker(session, at=(52.50, 13.405))
    job = f.job(session, status=JobStatus.ACCEPTED, at=(52.52, 13.405))
    assert ids(session, job) == [
        near_top.id,
        far_top.id,
        middling.id,
        near_unrated.id,
        twin_a.id,
        twin_b.id,
    ]


def test_filters_skill_availability_and_radius(session: Session) -> None:
    ok = f.worker(session)
    f.worker(session, skills=("cleaning",))
    f.worker(session, available=False)
    f.worker(session, at=(48.8566, 2.3522))  # Paris: 878 km away
    f.worker(session, at=(52.75, 13.405), service_radius_km=20)  # 25.6 km away, 20 km radius
    wide = f.worker(session, at=(52.75, 13.405), service_radius_km=30)
    job = f.job(session, status=JobStatus.ACCEPTED)
    assert ids(session, job) == [ok.id, wide.id]


def test_excludes_workers_busy_in_an_overlapping_window(session: Session) -> None:
    start = dt.datetime(2031, 5, 1, 10, tzinfo=dt.UTC)
    busy, free_after, free_done = f.worker(session), f.worker(session), f.worker(session)
    f.job(
        session, status=JobStatus.SCHEDULED, worker_id=busy.id, start=start + dt.timedelta(hours=1)
    )
    f.job(
        session,
        status=JobStatus.IN_PROGRESS,
        worker_id=free_after.id,
        start=start + dt.timedelta(hours=2),
    )  # starts exactly when ours ends
    f.job(session, status=JobStatus.CLOSED, worker_id=free_done.id, start=start)
    job = f.job(session, status=JobStatus.ACCEPTED, start=start, hours=2)
    assert ids(session, job) == sorted([free_after.id, free_done.id])


@pytest.mark.parametrize("status", list(OpportunityStatus))
def test_a_worker_is_offered_a_job_at_most_once(session: Session, status) -> None:  # type: ignore[no-untyped-def]
    asked, fresh = f.worker(session), f.worker(session)
    job = f.job(session, status=JobStatus.ACCEPTED)
    f.opportunity(session, job, asked, status=status, expires_at=job.created_at)
    assert ids(session, job) == [fresh.id]
