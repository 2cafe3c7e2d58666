"""What the console reads: a fixed number of indexed queries per page, never one per row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.timers import REAL_TIME
from gigco.models import (
    Category,
    Consumer,
    Dispute,
    Job,
    JobEvent,
    JobStatus,
    Notification,
    Opportunity,
    Payment,
    Review,
    Worker,
)

ATTENTION_LIMIT = 50
# The console's counts stop here (shown as "10000+"), as the API's page counts do: a count
# reads at most this many index entries, whatever the size of the table.
COUNT_CAP = 10_000


def _capped(where: list[Any], cap: int = COUNT_CAP) -> sa.ScalarSelect[int]:
    """How many jobs match ``where``, counting at most ``cap + 1``."""
    some = sa.select(Job.id).where(*where).limit(cap + 1).subquery()
    return sa.select(sa.func.count()).select_from(some).scalar_subquery()


def capped_count(session: Session, where: list[Any], cap: int = COUNT_CAP) -> int:
    """How many jobs match ``where``, or ``cap + 1`` when more do (never a full count)."""
    return session.scalar(sa.select(_capped(where, cap))) or 0


@dataclass(frozen=True)
class Overdue:
    """A job that needs a look: its deadline passed, or its step is overdue past the grace."""

    job: Job
    kind: str  # "timer", "step" or "overrun" (work in progress flagged as running long)
    due_at: dt.datetime
    late_seconds: float


def _overdue_where(column: Any, before: dt.datetime, status: JobStatus | None) -> list[Any]:
    # "column IS NOT NULL" matches the partial index's predicate word for word; a job on a
    # test clock is never overdue on real time (REAL_TIME is in ix_jobs_step_due_at's too).
    where = [column.is_not(None), REAL_TIME, column < before]
    if column is Job.overrun_flagged_at:  # ix_jobs_overrun: flagged and still in progress
        where.append(Job.status == JobStatus.IN_PROGRESS)
    if status is not None:
        where.append(Job.status == status)
    return where


def attention(
    session: Session,
    *,
    now: dt.datetime,
    grace_seconds: float,
    status: JobStatus | None = None,
    limit: int = ATTENTION_LIMIT,
) -> tuple[list[Overdue], int]:
    """Stuck or overdue jobs, most late first, and how many there are in all (each kind
    counted to at most ``COUNT_CAP + 1``).

    Three range scans, one over each partial index (``ix_jobs_timer_at``,
    ``ix_jobs_step_due_at``, ``ix_jobs_overrun``: work flagged as overrunning, still in
    progress), each oldest first and limited, plus three capped counts over the same.
    """
    step_before = now - dt.timedelta(seconds=grace_seconds)
    found: dict[int, Overdue] = {}
    total = 0
    for kind, column, before in (
        ("timer", Job.timer_at, now),
        ("step", Job.step_due_at, step_before),
        ("overrun", Job.overrun_flagged_at, now),
    ):
        where = _overdue_where(column, before, status)
        total += capped_count(session, where)
        for job in session.scalars(sa.select(Job).where(*where).order_by(column).limit(limit)):
            due = getattr(job, column.key)
            late = (now - due).total_seconds()
            if job.id not in found or found[job.id].late_seconds < late:
                found[job.id] = Overdue(job, kind, due, late)
    rows = sorted(found.values(), key=lambda o: o.late_seconds, reverse=True)[:limit]
    return rows, total


@dataclass(frozen=True)
class JobFilter:
    """What the jobs list is narrowed to; every field optional, all of them ANDed."""

    status: JobStatus | None = None
    consumer_id: int | None = None
    worker_id: int | None = None
    category: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    scheduled_from: dt.datetime | None = None
    scheduled_to: dt.datetime | None = None
    overdue: bool = False

    def where(self, *, now: dt.datetime, grace_seconds: float) -> list[Any]:
        """The WHERE clauses for this filter (``overdue``: as ``attention`` counts it)."""
        where: list[Any] = []
        if self.status is not None:
            where.append(Job.status == self.status)
        if self.consumer_id is not None:
            where.append(Job.consumer_id == self.consumer_id)
        if self.worker_id is not None:
            where.append(Job.worker_id == self.worker_id)
        if self.category is not None:
            where.append(
                Job.category_id
                == sa.select(Category.id).where(Category.name == self.category).scalar_subquery()
            )
        for column, low, high in (
            (Job.created_at, self.created_from, self.created_to),
            (Job.scheduled_start, self.scheduled_from, self.scheduled_to),
        ):
            if low is not None:
                where.append(column >= low)
            if high is not None:
                where.append(column < high)
        if self.overdue:
            step_before = now - dt.timedelta(seconds=grace_seconds)
            where.append(
                sa.or_(
                    sa.and_(*_overdue_where(Job.timer_at, now, None)),
                    sa.and_(*_overdue_where(Job.step_due_at, step_before, None)),
                    sa.and_(*_overdue_where(Job.overrun_flagged_at, now, None)),
                )
            )
        return where


@dataclass(frozen=True)
class JobPage:
    """One page of the filtered list, newest first, with the cursor to the next."""

    rows: list[Job]
    total: int  # at most COUNT_CAP + 1
    next_after: int | None  # the ``after`` of the next (older) page, None on the last


def find_jobs(
    session: Session,
    filters: JobFilter,
    *,
    now: dt.datetime,
    grace_seconds: float,
    after: int | None = None,
    per_page: int = 50,
) -> JobPage:
    """Jobs matching ``filters``, newest first, below the cursor ``after`` (a job id).

    Keyset paging on ``jobs.id``: a page costs the same whatever its depth, and a job
    created meanwhile never shifts one already shown onto the next page.
    """
    where = filters.where(now=now, grace_seconds=grace_seconds)
    total = capped_count(session, where)
    if after is not None:
        where.append(Job.id < after)
    rows = list(
        session.scalars(
            sa.select(Job).where(*where).order_by(Job.id.desc()).limit(per_page + 1)
        ).all()
    )
    more = len(rows) > per_page
    rows = rows[:per_page]
    return JobPage(rows, total, rows[-1].id if more else None)


def category_names(session: Session) -> list[str]:
    """Every category's name, for the filter's choices."""
    return list(session.scalars(sa.select(Category.name).order_by(Category.name)))


def jobs_by_id(session: Session, job_ids: list[int]) -> list[Job]:
    """The jobs with these ids that exist, in the order given."""
    found = {j.id: j for j in session.scalars(sa.select(Job).where(Job.id.in_(job_ids)))}
    return [found[i] for i in job_ids if i in found]


@dataclass
class JobDetail:
    """Everything the job page shows."""

    job: Job
    consumer: Any
    worker: Any
    events: list[JobEvent]
    opportunities: list[tuple[Opportunity, str]]
    payment: Payment | None
    reviews: list[Review]
    notifications: list[Notification]
    worker_names: dict[int, str] = field(default_factory=dict)
    dispute: Dispute | None = None
    # Each worker on the page: (withdrawals, no-shows), counted over all their jobs.
    reliability: dict[int, tuple[int, int]] = field(default_factory=dict)


def job_detail(session: Session, job_id: int) -> JobDetail | None:
    """The job with its history and side rows, or None: eleven queries whatever their sizes."""
    job = session.scalar(sa.select(Job).where(Job.id == job_id))
    if job is None:
        return None
    consumer = session.execute(
        sa.select(Consumer.id, Consumer.name, Consumer.email, Consumer.payment_method).where(
            Consumer.id == job.consumer_id
        )
    ).one()
    opportunities = [
        (opp, name)
        for opp, name in session.execute(
            sa.select(Opportunity, Worker.name)
            .join(Worker, Worker.id == Opportunity.worker_id)
            .where(Opportunity.job_id == job_id)
            .order_by(Opportunity.id)
        ).all()
    ]
    worker_names = {opp.worker_id: name for opp, name in opportunities}
    worker = None
    if job.worker_id is not None:
        worker = session.execute(
            sa.select(Worker.id, Worker.name, Worker.email).where(Worker.id == job.worker_id)
        ).one_or_none()
        if worker is not None:
            worker_names[worker.id] = worker.name
    reliability: dict[int, tuple[int, int]] = {}
    if worker_names:
        reliability = {
            worker_id: (withdrawals, no_shows)
            for worker_id, withdrawals, no_shows in session.execute(
                sa.select(Worker.id, Worker.withdrawals, Worker.no_shows).where(
                    Worker.id.in_(sorted(worker_names))
                )
            ).all()
        }
    events = session.scalars(
        sa.select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)
    ).all()
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job_id))
    reviews = session.scalars(
        sa.select(Review).where(Review.job_id == job_id).order_by(Review.id)
    ).all()
    # notifications has no index on job_id; every notification about a job goes to its
    # consumer or to a worker who held an opportunity on it, and those two are indexed.
    recipients = [Notification.consumer_id == job.consumer_id]
    if worker_names:
        recipients.append(Notification.worker_id.in_(sorted(worker_names)))
    notifications = session.scalars(
        sa.select(Notification)
        .where(Notification.job_id == job_id, sa.or_(*recipients))
        .order_by(Notification.id)
    ).all()
    return JobDetail(
        job=job,
        consumer=consumer,
        worker=worker,
        events=list(events),
        opportunities=opportunities,
        payment=payment,
        reviews=list(reviews),
        notifications=list(notifications),
        worker_names=worker_names,
        dispute=session.scalar(sa.select(Dispute).where(Dispute.job_id == job_id)),
        reliability=reliability,
    )
