"""Payments, their attempts, disputes and refunds, and the simulated gateway's own ledger."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gigco.db import Base
from gigco.models.columns import created_at, enum_column
from gigco.models.enums import AttemptOutcome, DisputeStatus, PaymentStatus, RefundStatus

PAYMENT_KIND_JOB = "job"
PAYMENT_KIND_LATE_CANCEL_FEE = "late_cancel_fee"
PAYMENT_KINDS = (PAYMENT_KIND_JOB, PAYMENT_KIND_LATE_CANCEL_FEE)


class Payment(Base):
    """What a job costs its consumer and earns its worker; one per job, made by the first claim.

    The current charge intent is ``idempotency_key`` with ``payment_method``: while it is
    ``in_doubt`` (claimed and not answered, or answered with an error) the next attempt
    repeats it under the same key; once answered for sure (declined) the next one is a new
    intent with a new key. ``claim_token`` names the run holding the current claim.
    """

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(
        sa.String(16),
        default=PAYMENT_KIND_JOB,
        server_default=PAYMENT_KIND_JOB,
        comment="what is charged: the job's price (job) or a late-cancellation fee",
    )
    idempotency_key: Mapped[str] = mapped_column(
        sa.String(64), unique=True, comment="the current charge intent's key"
    )
    payment_method: Mapped[str | None] = mapped_column(
        sa.String(64), comment="the current intent's payment method"
    )
    in_doubt: Mapped[bool] = mapped_column(
        default=False, comment="the current intent may have taken money: repeat it, never a new one"
    )
    claim_token: Mapped[str | None] = mapped_column(
        sa.String(64), comment="the run holding the claim (a task id); NULL when none does"
    )
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus, "payment_status"), default=PaymentStatus.PENDING
    )
    amount_cents: Mapped[int]
    fee_cents: Mapped[int]
    worker_earnings_cents: Mapped[int]
    gateway_charge_id: Mapped[str | None] = mapped_column(sa.String(64))
    refunded_cents: Mapped[int] = mapped_column(default=0)
    refunded_fee_cents: Mapped[int] = mapped_column(
        default=0, comment="the part of refunded_cents taken from the platform's fee"
    )
    created_at: Mapped[dt.datetime] = created_at()
    succeeded_at: Mapped[dt.datetime | None]

    attempts: Mapped[list[PaymentAttempt]] = relationship(
        lazy="selectin", order_by="PaymentAttempt.id"
    )

    __table_args__ = (
        sa.CheckConstraint("amount_cents = fee_cents + worker_earnings_cents", name="split"),
        sa.CheckConstraint(f"kind IN {PAYMENT_KINDS!r}", name="kind"),
        sa.CheckConstraint(
            "refunded_cents BETWEEN 0 AND amount_cents AND refunded_fee_cents BETWEEN 0 AND"
            " fee_cents AND refunded_fee_cents <= refunded_cents",
            name="refund_within_price",
        ),
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
    idempotency_key: Mapped[str | None] = mapped_column(
        sa.String(64), comment="the charge intent's key sent with this attempt"
    )
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


class Dispute(Base):
    """A consumer's dispute of a paid job (one per job) and the operator's resolution.

    A resolution with a refund leaves ``refund_status`` pending until the gateway has taken
    it under ``refund_key``; ``refund_due_at`` is when a pending refund is (re)tried.
    """

    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    reason: Mapped[str] = mapped_column(sa.String(2000))
    status: Mapped[DisputeStatus] = mapped_column(
        enum_column(DisputeStatus, "dispute_status"), default=DisputeStatus.OPEN
    )
    opened_at: Mapped[dt.datetime] = created_at()
    resolved_at: Mapped[dt.datetime | None]
    note: Mapped[str | None] = mapped_column(sa.String(2000), comment="the operator's reason")
    refund_cents: Mapped[int | None]
    refund_fee_cents: Mapped[int | None] = mapped_column(
        comment="the part of the refund taken from the platform's fee; the rest from earnings"
    )
    refund_status: Mapped[RefundStatus | None] = mapped_column(
        enum_column(RefundStatus, "refund_status")
    )
    refund_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    refund_due_at: Mapped[dt.datetime | None]
    refund_claim_token: Mapped[str | None] = mapped_column(
        sa.String(64), comment="the run holding the refund's claim (a task id)"
    )
    gateway_refund_id: Mapped[str | None] = mapped_column(sa.String(64))
    refunded_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.Index(
            "ix_disputes_refund_due_at",
            "refund_due_at",
            postgresql_where=sa.text("refund_due_at IS NOT NULL"),
            sqlite_where=sa.text("refund_due_at IS NOT NULL"),
        ),
    )


class SimulatedCharge(Base):
    """The simulated processor's memory of each idempotency key (stands in for Stripe's):
    the request it first saw and its result, declines included (``charge_id`` NULL)."""

    __tablename__ = "simulated_charges"

    idempotency_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    reference: Mapped[str | None] = mapped_column(
        sa.String(64), index=True, comment="the caller's reference (Stripe's metadata)"
    )
    payment_method: Mapped[str] = mapped_column(sa.String(64))
    amount_cents: Mapped[int]
    charge_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = created_at()


class SimulatedRefund(Base):
    """The simulated processor's refunds, one per idempotency key."""

    __tablename__ = "simulated_refunds"

    idempotency_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    charge_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    amount_cents: Mapped[int]
    refund_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = created_at()


class ProcessorIntent(Base):
    """A real processor's object for one of our charge intents (Stripe: its PaymentIntent),
    stored before it is confirmed: an in-doubt confirmation is then settled by reading the
    object back, never by making another."""

    __tablename__ = "processor_intents"

    idempotency_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    processor_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[dt.datetime] = created_at()
