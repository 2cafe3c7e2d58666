"""Notifications remember their writing transaction, for the feed's cursor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add notifications.tx (0 for rows written before: all settled) and its feed indexes."""
    op.add_column(
        "notifications", sa.Column("tx", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_index(
        "ix_notifications_consumer_id_tx_id", "notifications", ["consumer_id", "tx", "id"]
    )
    op.create_index("ix_notifications_worker_id_tx_id", "notifications", ["worker_id", "tx", "id"])


def downgrade() -> None:
    """Drop the feed's column and indexes."""
    op.drop_index("ix_notifications_worker_id_tx_id", table_name="notifications")
    op.drop_index("ix_notifications_consumer_id_tx_id", table_name="notifications")
    op.drop_column("notifications", "tx")
