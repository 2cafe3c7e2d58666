"""Reviews, notifications and idempotency keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gigco.db import Base
from gigco.models.columns import JSONType, created_at, current_tx, enum_column
from gigco.models.enums import Role


class Review(Base):
    """One side's review of the other after a job; one per job and author role."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    author_role: Mapped[Role] = mapped_column(enum_column(Role, "author_role"))
    author_id: Mapped[int]
    rating: Mapped[int] = mapped_column(sa.SmallInteger)
    comment: Mapped[str | None] = mapped_column(sa.String(2000))
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (
        sa.UniqueConstraint("job_id", "author_role"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )


class Notification(Base):
    """A message to one consumer or one worker."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("consumers.id", ondelete="CASCADE")
    )
    worker_id: Mapped[int | None] = mapped_column(sa.ForeignKey("workers.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = created_at()
    # The writing transaction, for the feed (gigco.lifecycle.feed): a reader that only takes
    # rows below the oldest running transaction (settled_tx) and orders by (tx, id) never
    # skips a row whose transaction commits later, which an id cursor alone would.
    tx: Mapped[int] = mapped_column(sa.BigInteger, default=current_tx(), server_default="0")

    __table_args__ = (
        sa.CheckConstraint(
            "(consumer_id IS NULL) <> (worker_id IS NULL)", name="exactly_one_recipient"
        ),
        sa.Index("ix_notifications_consumer_id_tx_id", "consumer_id", "tx", "id"),
        sa.Index("ix_notifications_worker_id_tx_id", "worker_id", "tx", "id"),
        sa.Index("ix_notifications_consumer_id_id", "consumer_id", "id"),
        sa.Index("ix_notifications_worker_id_id", "worker_id", "id"),
        sa.Index("ix_notifications_job_id", "job_id"),
    )


class IdempotencyKey(Base):
    """A consumer's ``Idempotency-Key`` for job creation and the response it produced."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(sa.ForeignKey("consumers.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    response_status: Mapped[int]
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (sa.UniqueConstraint("consumer_id", "key"),)
