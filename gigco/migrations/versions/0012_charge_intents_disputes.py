"""A charge key per intent, disputes and refunds, the simulated processor's Stripe rules,
and the Stripe gateway's memory of its PaymentIntents.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 22:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from gigco.db import UTCDateTime

revision: str = "0012"
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """New columns and tables; a payment in flight keeps its key (``job-<id>``) as its intent.

    An old payment's key was charged with whatever card the consumer had; its intent stays
    in doubt until answered, so the first attempt under this release repeats it."""
    columns = [
        sa.Column("payment_method", sa.String(64), nullable=True,
                  comment="the current intent's payment method"),
        sa.Column("in_doubt", sa.Boolean(), nullable=False, server_default=sa.false(),
                  comment="the current intent may have taken money: repeat it, never a new one"),
        sa.Column("claim_token", sa.String(64), nullable=True,
                  comment="the run holding the claim (a task id); NULL when none does"),
        sa.Column("refunded_cents", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("refunded_fee_cents", sa.Integer(), nullable=False, server_default="0",
                  comment="the part of refunded_cents taken from the platform's fee"),
    ]
    for column in columns:  # native ADD COLUMN on SQLite too (no batch copy of the table)
        op.add_column("payments", column)
    if op.get_bind().dialect.name == "postgresql":  # SQLite adds no constraint without a copy
        op.create_check_constraint(
            op.f("ck_payments_refund_within_price"),
            "payments",
            "refunded_cents BETWEEN 0 AND amount_cents AND refunded_fee_cents BETWEEN 0 AND"
            " fee_cents AND refunded_fee_cents <= refunded_cents",
        )
        # The defaults stay: the previous release inserts payments without these columns.
        op.alter_column("payments", "idempotency_key", comment="the current charge intent's key",
                        existing_type=sa.String(64), existing_nullable=False)
    op.add_column(
        "payment_attempts",
        sa.Column("idempotency_key", sa.String(64), nullable=True,
                  comment="the charge intent's key sent with this attempt"),
    )
    op.execute("UPDATE payment_attempts SET idempotency_key = 'job-' || job_id")
    op.execute(
        "UPDATE payments SET in_doubt = (status = 'pending'),"
        " payment_method = (SELECT c.payment_method FROM simulated_charges c"
        "  WHERE c.idempotency_key = payments.idempotency_key)"
    )
    op.add_column(
        "simulated_charges",
        sa.Column("reference", sa.String(64), nullable=True,
                  comment="the caller's reference (Stripe's metadata)"),
    )
    op.execute("UPDATE simulated_charges SET reference = idempotency_key")
    op.create_index("ix_simulated_charges_reference", "simulated_charges", ["reference"])
    if op.get_bind().dialect.name == "postgresql":
        # ``tries`` stays for the previous release's simulated gateway, which counts in it
        # (gigco.migrate.KEPT_FOR_PREVIOUS_RELEASE); this release neither reads nor writes
        # it, so it gets a default. SQLite (development) runs no previous release beside.
        op.alter_column("simulated_charges", "tries", server_default="1")
    else:
        op.execute("ALTER TABLE simulated_charges DROP COLUMN tries")
    op.create_table(
        "simulated_refunds",
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("charge_id", sa.String(64), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_simulated_refunds")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_simulated_refunds_refund_id")),
    )
    op.create_index("ix_simulated_refunds_charge_id", "simulated_refunds", ["charge_id"])
    op.create_table(
        "processor_intents",
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("processor_id", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_processor_intents")),
        sa.UniqueConstraint("processor_id", name=op.f("uq_processor_intents_processor_id")),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", name="dispute_status", native_enum=False,
                    create_constraint=True, length=8),
            nullable=False,
        ),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("note", sa.String(2000), nullable=True, comment="the operator's reason"),
        sa.Column("refund_cents", sa.Integer(), nullable=True),
        sa.Column("refund_fee_cents", sa.Integer(), nullable=True,
                  comment="the part of the refund taken from the platform's fee; the rest from earnings"),
        sa.Column(
            "refund_status",
            sa.Enum("pending", "succeeded", name="refund_status", native_enum=False,
                    create_constraint=True, length=9),
            nullable=True,
        ),
        sa.Column("refund_key", sa.String(64), nullable=True),
        sa.Column("refund_due_at", UTCDateTime(), nullable=True),
        sa.Column("refund_claim_token", sa.String(64), nullable=True,
                  comment="the run holding the refund's claim (a task id)"),
        sa.Column("gateway_refund_id", sa.String(64), nullable=True),
        sa.Column("refunded_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_disputes_job_id_jobs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint("job_id", name=op.f("uq_disputes_job_id")),
        sa.UniqueConstraint("refund_key", name=op.f("uq_disputes_refund_key")),
    )
    op.create_index(
        "ix_disputes_refund_due_at", "disputes", ["refund_due_at"],
        postgresql_where=sa.text("refund_due_at IS NOT NULL"),
        sqlite_where=sa.text("refund_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop what upgrade added; tries come back as 1 per key."""
    op.drop_index("ix_disputes_refund_due_at", table_name="disputes")
    op.drop_table("disputes")
    op.drop_table("processor_intents")
    op.drop_index("ix_simulated_refunds_charge_id", table_name="simulated_refunds")
    op.drop_table("simulated_refunds")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("simulated_charges", "tries", server_default=None)
    else:
        op.add_column(
            "simulated_charges",
            sa.Column("tries", sa.Integer(), nullable=False, server_default="1"),
        )
    op.drop_index("ix_simulated_charges_reference", table_name="simulated_charges")
    op.execute("ALTER TABLE simulated_charges DROP COLUMN reference")
    op.execute("ALTER TABLE payment_attempts DROP COLUMN idempotency_key")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("payments", "idempotency_key", comment=None,
                        existing_type=sa.String(64), existing_nullable=False)
        op.drop_constraint(op.f("ck_payments_refund_within_price"), "payments", type_="check")
    for name in ("refunded_fee_cents", "refunded_cents", "claim_token", "in_doubt",
                 "payment_method"):
        op.execute(f"ALTER TABLE payments DROP COLUMN {name}")
