"""Consumers, workers, their skills and their API tokens."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gigco import clock
from gigco.db import Base
from gigco.models.catalog import Category
from gigco.models.columns import created_at


class Consumer(Base):
    """Someone who posts jobs and pays for them."""

    __tablename__ = "consumers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320))
    payment_method: Mapped[str] = mapped_column(sa.String(64), default="pm_card_visa")
    rating_sum: Mapped[int] = mapped_column(default=0, comment="sum of ratings workers gave")
    rating_count: Mapped[int] = mapped_column(default=0)
    completed_jobs: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (sa.Index("uq_consumers_lower_email", sa.func.lower(email), unique=True),)


worker_skills = sa.Table(
    "worker_skills",
    Base.metadata,
    sa.Column("worker_id", sa.ForeignKey("workers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("category_id", sa.ForeignKey("categories.id"), primary_key=True, index=True),
)


class Worker(Base):
    """A gig worker who takes jobs in their skills within their service radius."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320))
    lat: Mapped[float]
    lng: Mapped[float]
    service_radius_km: Mapped[float]
    available: Mapped[bool] = mapped_column(default=True)
    rating_sum: Mapped[int] = mapped_column(default=0, comment="sum of ratings consumers gave")
    rating_count: Mapped[int] = mapped_column(default=0)
    completed_jobs: Mapped[int] = mapped_column(default=0)
    withdrawals: Mapped[int] = mapped_column(
        default=0, server_default="0", comment="jobs this worker withdrew from once assigned"
    )
    no_shows: Mapped[int] = mapped_column(
        default=0, server_default="0", comment="scheduled jobs this worker did not start in time"
    )
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    skills: Mapped[list[Category]] = relationship(
        secondary=worker_skills, lazy="selectin", order_by=Category.name
    )

    __table_args__ = (
        sa.CheckConstraint("service_radius_km >= 0", name="radius_non_negative"),
        sa.CheckConstraint("lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", name="coords"),
        sa.Index("uq_workers_lower_email", sa.func.lower(email), unique=True),
        # Matching: which workers' own box (their reach around them, capped) holds the
        # job (cube + earthdistance), reading the best-rated first (btree_gist's <-> on
        # the rating); gigco.lifecycle.matching._reach_box.
        sa.Index(
            "ix_workers_reach_rating",
            # Both expressions spelled as PostgreSQL prints them back, line breaks and all,
            # for Alembic's comparison; migration 0011 creates the index.
            sa.text(
                "earth_box(ll_to_earth(lat, lng), LEAST(service_radius_km,"
                " 100.0::double precision) * 1010.0::double precision)"
            ),
            # The mean rating (matching._rating).
            sa.text(
                "(\nCASE\n    WHEN rating_count > 0"
                " THEN rating_sum::double precision / rating_count::double precision\n"
                "    ELSE NULL::double precision\nEND)"
            ),
            postgresql_using="gist",
        ).ddl_if(dialect="postgresql"),
    )


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256 hash, belonging to one consumer or worker."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    consumer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("consumers.id", ondelete="CASCADE")
    )
    worker_id: Mapped[int | None] = mapped_column(sa.ForeignKey("workers.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (
        sa.CheckConstraint(
            "(consumer_id IS NULL) <> (worker_id IS NULL)", name="exactly_one_owner"
        ),
    )


class WorkerStrike(Base):
    """One strike against a worker: a job they withdrew from or did not come to, and when.

    ``workers.withdrawals`` and ``workers.no_shows`` count them all time (shown to operators);
    matching counts only the recent ones (``ix_worker_strikes_worker_id_at``).
    """

    __tablename__ = "worker_strikes"

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(sa.ForeignKey("workers.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16), comment="withdrawal or no_show")
    at: Mapped[dt.datetime]

    __table_args__ = (
        sa.CheckConstraint("kind IN ('withdrawal', 'no_show')", name="kind"),
        sa.Index("ix_worker_strikes_worker_id_at", "worker_id", "at"),
    )
