"""Payments, their attempts, and the simulated gateway's own ledger."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gigco.db import Base
from gigco.models.columns import created_at, enum_column
from gigco.models.enums import AttemptOutcome, PaymentStatus


class Payment(Base):
    """What a job costs its consumer and earns its worker; one per job."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus, "payment_status"), default=PaymentStatus.PENDING
    )
    amount_cents: Mapped[int]
    fee_cents: Mapped[int]
    worker_earnings_cents: Mapped[int]
    gateway_charge_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = created_at()
    succeeded_at: Mapped[dt.datetime | None]

    attempts: Mapped[list[PaymentAttempt]] = relationship(
        lazy="selectin", order_by="PaymentAttempt.id"
    )

    __table_args__ = (
        sa.CheckConstraint("amount_cents = fee_cents + worker_earnings_cents", name="split"),
    )


class PaymentAttempt(Base):
    """One charge attempt at the gateway; a job has at most one that succeeded."""

    __tablename__ = "payment_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int]
    outcome: Mapped[AttemptOutcome] = mapped_column(enum_column(AttemptOutcome, "outcome"))
    detail: Mapped[str | None] = mapped_column(sa.String(200))
    attempted_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (
        sa.UniqueConstraint("payment_id", "number"),
        sa.Index(
            "uq_payment_attempts_one_success_per_job",
            "job_id",
            unique=True,
            postgresql_where=sa.text("outcome = 'succeeded'"),
            sqlite_where=sa.text("outcome = 'succeeded'"),
        ),
    )


class SimulatedCharge(Base):
    """The simulated processor's memory of each idempotency key (stands in for Stripe's)."""

    __tablename__ = "simulated_charges"

    idempotency_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    payment_method: Mapped[str] = mapped_column(sa.String(64))
    amount_cents: Mapped[int]
    tries: Mapped[int] = mapped_column(default=0)
    charge_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = created_at()
