"""Matching: which workers may take a job, and in what order they are asked."""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.models import Job, JobStatus, Opportunity, Worker, worker_skills

EARTH_RADIUS_KM = 6371.0088
BUSY = (JobStatus.WORKER_ASSIGNED, JobStatus.SCHEDULED, JobStatus.IN_PROGRESS)


def great_circle_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Haversine distance between two points in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Candidate:
    """A worker who may be offered the job, with what ranks them."""

    worker_id: int
    rating: float | None
    distance_km: float

    def rank_key(self) -> tuple[int, float, float, int]:
        """Rating (best first, unrated last), then distance, then id."""
        unrated = self.rating is None
        return (int(unrated), -(self.rating or 0.0), self.distance_km, self.worker_id)


def overlapping_busy_job(job: Job) -> sa.Exists:
    """EXISTS another busy job of the outer worker that overlaps ``job``'s time window."""
    other = sa.orm.aliased(Job)
    return sa.exists().where(
        other.worker_id == Worker.id,
        other.id != job.id,
        other.status.in_(BUSY),
        other.scheduled_start < job.scheduled_end,
        other.scheduled_end > job.scheduled_start,
    )


def candidates(session: Session, job: Job) -> list[Candidate]:
    """Every worker who may be offered ``job`` now, best first."""
    rows = session.execute(
        sa.select(
            Worker.id,
            Worker.lat,
            Worker.lng,
            Worker.service_radius_km,
            Worker.rating_sum,
            Worker.rating_count,
        )
        .join(worker_skills, worker_skills.c.worker_id == Worker.id)
        .where(
            worker_skills.c.category_id == job.category_id,
            Worker.available.is_(True),
            ~overlapping_busy_job(job),
            ~sa.exists().where(Opportunity.job_id == job.id, Opportunity.worker_id == Worker.id),
        )
    ).all()
    found = []
    for worker_id, lat, lng, radius, rating_sum, rating_count in rows:
        distance = great_circle_km(job.lat, job.lng, lat, lng)
        if distance <= radius:
            rating = rating_sum / rating_count if rating_count else None
            found.append(Candidate(worker_id, rating, distance))
    return sorted(found, key=Candidate.rank_key)
