"""Outbound webhooks: endpoints, their outbox of messages, and each delivery attempt."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gigco import clock
from gigco.db import Base
from gigco.models.columns import JSONType, created_at, enum_column
from gigco.models.enums import Role


class DeliveryStatus(StrEnum):
    """Where one message to one endpoint stands (``sending`` shows as pending in the API)."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(Base):
    """A URL a consumer, a worker or the operator registered to receive job events."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_role: Mapped[Role] = mapped_column(enum_column(Role, "owner_role"))
    owner_id: Mapped[int | None] = mapped_column(comment="consumer or worker id; NULL: operator")
    url: Mapped[str] = mapped_column(sa.String(2048))
    description: Mapped[str | None] = mapped_column(sa.String(500))
    event_types: Mapped[list[str] | None] = mapped_column(JSONType, comment="NULL: every type")
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(200))
    secret: Mapped[str] = mapped_column(sa.String(100))
    previous_secret: Mapped[str | None] = mapped_column(
        sa.String(100), comment="still signs beside ``secret`` until previous_secret_until"
    )
    previous_secret_until: Mapped[dt.datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(
        default=0, comment="messages finally failed in a row; reset by a delivery"
    )
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    __table_args__ = (
        sa.CheckConstraint(
            "(owner_role = 'operator') = (owner_id IS NULL)", name="owner_id_unless_operator"
        ),
        sa.Index("ix_webhook_endpoints_owner_role_owner_id", "owner_role", "owner_id"),
    )


class WebhookDelivery(Base):
    """One message to one endpoint (the outbox row), written with the event it carries."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int | None] = mapped_column(comment="the job event's seq; NULL for a ping")
    msg_id: Mapped[str] = mapped_column(sa.String(64), unique=True, comment="webhook-id")
    event_type: Mapped[str] = mapped_column(sa.String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    tries: Mapped[int] = mapped_column(default=0, comment="attempts on the current schedule")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(
        comment="pending: when the next attempt is due; sending: when the lease expires"
    )
    created_at: Mapped[dt.datetime] = created_at()
    finished_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.Index(
            "ix_webhook_deliveries_next_attempt_at",
            "next_attempt_at",
            postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
            sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
        ),
        sa.Index("ix_webhook_deliveries_endpoint_id_job_id_seq", "endpoint_id", "job_id", "seq"),
        sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        sa.Index("ix_webhook_deliveries_job_id", "job_id"),
    )


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: when, the answer (or the error) and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[dt.datetime]
    response_status: Mapped[int | None]
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    response_body: Mapped[str | None] = mapped_column(sa.String(1024), comment="first 1 KiB")
