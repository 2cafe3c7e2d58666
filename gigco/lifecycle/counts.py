"""Jobs per status and history events per kind, read from the counters the database keeps
(``gigco.models.counts``): a scrape or a dashboard reads a few hundred rows at any size."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.models import JobEventCount, JobStatus, JobStatusCount

EventKind = tuple[str, JobStatus | None, JobStatus | None]


def jobs_per_status(session: Session) -> dict[JobStatus, int]:
    """How many jobs are in each status, every status present (exact)."""
    rows = session.execute(
        sa.select(JobStatusCount.status, sa.func.sum(JobStatusCount.n)).group_by(
            JobStatusCount.status
        )
    ).all()
    found = {JobStatus(status): int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in JobStatus}


def events_per_kind(session: Session) -> dict[EventKind, int]:
    """How many history events were ever written, by type and from/to status."""
    c = JobEventCount
    rows = session.execute(
        sa.select(c.type, c.from_status, c.to_status, sa.func.sum(c.n)).group_by(
            c.type, c.from_status, c.to_status
        )
    ).all()
    return {
        (type_, JobStatus(from_) if from_ else None, JobStatus(to) if to else None): int(n)
        for type_, from_, to, n in rows
    }
