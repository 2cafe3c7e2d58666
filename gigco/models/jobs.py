"""Jobs, their history events and the opportunities offered to workers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gigco import clock
from gigco.db import Base
from gigco.models.accounts import Worker
from gigco.models.catalog import Category
from gigco.models.columns import JSONType, created_at, enum_column
from gigco.models.enums import JobStatus, OpportunityStatus

_UNARMED = "timer_at IS NOT NULL AND timer_armed_at IS NULL AND test_clock_id IS NULL"


# Work flagged as overrunning and still in progress, on real time: the ops console's list.
_OVERRUNNING = "overrun_flagged_at IS NOT NULL AND status = 'in_progress' AND test_clock_id IS NULL"


class Job(Base):
    """One job and where its lifecycle stands; ``status`` is the state."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(sa.ForeignKey("consumers.id"))
    worker_id: Mapped[int | None] = mapped_column(sa.ForeignKey("workers.id"))
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    lat: Mapped[float]
    lng: Mapped[float]
    scheduled_start: Mapped[dt.datetime]
    scheduled_end: Mapped[dt.datetime] = mapped_column(
        comment="scheduled_start + estimated_hours, for the matching overlap test"
    )
    estimated_hours: Mapped[float]
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "job_status"), default=JobStatus.DRAFT
    )
    subtotal_cents: Mapped[int | None]
    fee_cents: Mapped[int | None]
    price_cents: Mapped[int | None]
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    offer_expires_at: Mapped[dt.datetime | None]
    review_deadline: Mapped[dt.datetime | None]
    match_round: Mapped[int] = mapped_column(default=0, comment="matching rounds started")
    payment_attempts: Mapped[int] = mapped_column(
        default=0, comment="charge attempts since the job last entered completed"
    )
    timer_at: Mapped[dt.datetime | None] = mapped_column(
        comment="the job's earliest pending deadline; swept through a partial index"
    )
    timer_armed_at: Mapped[dt.datetime | None] = mapped_column(
        comment="when a sweep last sent timer_at's task; cleared whenever timer_at is written"
    )
    overrun_flagged_at: Mapped[dt.datetime | None] = mapped_column(
        comment="when work in progress was flagged as running past its expected end"
    )
    step_due_at: Mapped[dt.datetime | None] = mapped_column(
        comment="when a pending system step became due; re-kicked once overdue by the grace"
    )
    event_seq: Mapped[int] = mapped_column(default=0, comment="seq of the latest event")
    # Nullable while the previous release (which does not write it) may still create jobs:
    # such a job follows the settings of whichever process runs it, as it did before.
    policy_version: Mapped[int | None] = mapped_column(
        sa.ForeignKey("lifecycle_policies.version"),
        comment="the lifecycle policy the job runs under (gigco.lifecycle.policies)",
    )
    test_clock_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("test_clocks.id"),
        comment="the test clock the job runs on; NULL (every real job) is real time",
    )
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    category: Mapped[Category] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        sa.CheckConstraint("estimated_hours >= 0.5 AND estimated_hours <= 12", name="hours"),
        sa.CheckConstraint("lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", name="coords"),
        sa.CheckConstraint(
            "price_cents IS NULL OR price_cents = subtotal_cents + fee_cents", name="price_sum"
        ),
        sa.Index("ix_jobs_consumer_id_id", "consumer_id", "id"),
        sa.Index("ix_jobs_worker_id_status", "worker_id", "status"),
        sa.Index("ix_jobs_worker_id_id", "worker_id", "id"),
        sa.Index("ix_jobs_status_id", "status", "id"),
        sa.Index(
            "ix_jobs_timer_at",
            "timer_at",
            postgresql_where=sa.text("timer_at IS NOT NULL"),
            sqlite_where=sa.text("timer_at IS NOT NULL"),
        ),
        # A test clock's advance reads its jobs' deadlines here; the real sweeps' indexes
        # below leave clock jobs out, so real time never fires them.
        sa.Index(
            "ix_jobs_test_clock_timer",
            "test_clock_id",
            "timer_at",
            postgresql_where=sa.text("test_clock_id IS NOT NULL"),
            sqlite_where=sa.text("test_clock_id IS NOT NULL"),
        ),
        # The sweep's claim: deadlines no sweep has sent yet, and sent ones by when they were
        # sent (re-sent once they could have been lost).
        sa.Index(
            "ix_jobs_timer_unarmed",
            "timer_at",
            postgresql_where=sa.text(_UNARMED),
            sqlite_where=sa.text(_UNARMED),
        ),
        sa.Index(
            "ix_jobs_timer_armed_at",
            "timer_armed_at",
            postgresql_where=sa.text("timer_armed_at IS NOT NULL AND test_clock_id IS NULL"),
            sqlite_where=sa.text("timer_armed_at IS NOT NULL AND test_clock_id IS NULL"),
        ),
        sa.Index(
            "ix_jobs_overrun",
            "overrun_flagged_at",
            postgresql_where=sa.text(_OVERRUNNING),
            sqlite_where=sa.text(_OVERRUNNING),
        ),
        sa.Index(
            "ix_jobs_step_due_at",
            "step_due_at",
            postgresql_where=sa.text("step_due_at IS NOT NULL AND test_clock_id IS NULL"),
            sqlite_where=sa.text("step_due_at IS NOT NULL AND test_clock_id IS NULL"),
        ),
    )


class JobEvent(Base):
    """One entry of a job's history; ``seq`` runs 1, 2, 3 … per job with no gaps."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(sa.String(64))
    from_status: Mapped[JobStatus | None] = mapped_column(enum_column(JobStatus, "event_from"))
    to_status: Mapped[JobStatus | None] = mapped_column(enum_column(JobStatus, "event_to"))
    actor: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (sa.UniqueConstraint("job_id", "seq"),)


class Opportunity(Base):
    """A job offered to one worker, expiring at ``expires_at``; at most one pending per job."""

    __tablename__ = "opportunities"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    worker_id: Mapped[int] = mapped_column(sa.ForeignKey("workers.id"))
    round: Mapped[int]
    status: Mapped[OpportunityStatus] = mapped_column(
        enum_column(OpportunityStatus, "opportunity_status"), default=OpportunityStatus.PENDING
    )
    distance_km: Mapped[float]
    offered_at: Mapped[dt.datetime] = created_at()
    expires_at: Mapped[dt.datetime]
    responded_at: Mapped[dt.datetime | None]

    job: Mapped[Job] = relationship(lazy="raise")
    worker: Mapped[Worker] = relationship(lazy="raise")

    __table_args__ = (
        # A worker is offered a job at most once, and a job has one pending offer at a time.
        sa.UniqueConstraint("job_id", "worker_id"),
        sa.Index(
            "uq_opportunities_one_pending_per_job",
            "job_id",
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_opportunities_worker_id_status", "worker_id", "status"),
    )
