"""Workers say they are alive, what they have in flight and which queues they consume.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add seen_at, in_flight and queues to heartbeats."""
    with op.batch_alter_table("heartbeats") as batch:
        batch.add_column(
            sa.Column(
                "seen_at",
                gigco.db.UTCDateTime(timezone=True),
                nullable=True,
                comment="a worker: when its main process last said it was alive",
            )
        )
        batch.add_column(
            sa.Column(
                "in_flight",
                sa.Integer(),
                nullable=True,
                comment="a worker: tasks it was executing when it last said so",
            )
        )
        batch.add_column(
            sa.Column(
                "queues",
                sa.String(length=255),
                nullable=True,
                comment="a worker: the queues it consumes, comma-separated",
            )
        )


def downgrade() -> None:
    """Drop seen_at, in_flight and queues."""
    with op.batch_alter_table("heartbeats") as batch:
        batch.drop_column("queues")
        batch.drop_column("in_flight")
        batch.drop_column("seen_at")
