"""Matching reads the best-rated workers first: a GiST index on place and rating.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 12:30:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The same expression as gigco.lifecycle.matching._rating (the planner matches it by shape).
RATING = "(CASE WHEN rating_count > 0 THEN rating_sum::float8 / rating_count::float8 END)"


def upgrade() -> None:
    """Replace ix_workers_earth (place) by ix_workers_earth_rating (place, rating), which
    also answers box searches alone; btree_gist gives float8 its GiST operators (=, <->)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute(
        f"CREATE INDEX ix_workers_earth_rating ON workers USING gist (ll_to_earth(lat, lng), {RATING})"
    )
    op.execute("DROP INDEX ix_workers_earth")


def downgrade() -> None:
    """Back to the place-only index (the extension stays: other objects may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX ix_workers_earth ON workers USING gist (ll_to_earth(lat, lng))")
    op.execute("DROP INDEX ix_workers_earth_rating")
