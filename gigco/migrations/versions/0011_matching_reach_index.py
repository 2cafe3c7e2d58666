"""Matching searches each worker's own reach: a GiST index on the box around each worker.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 22:00:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The same expressions as gigco.lifecycle.matching._reach_box and _rating (the planner
# matches them by shape): the box holding every point within the worker's radius, capped at
# MAX_SERVICE_RADIUS_KM (100), widened 1 % for earthdistance's larger sphere.
REACH = "earth_box(ll_to_earth(lat, lng), least(service_radius_km, 100.0) * 1010.0)"
RATING = "(CASE WHEN rating_count > 0 THEN rating_sum::float8 / rating_count::float8 END)"


def upgrade() -> None:
    """Replace ix_workers_earth_rating (place, rating), searched with a box as wide as the
    widest radius of any worker, by ix_workers_reach_rating (each worker's own box, rating);
    the widest radius is no longer asked, so ix_workers_service_radius_km goes."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_workers_reach_rating ON workers USING gist ({REACH}, {RATING})")
        op.execute("DROP INDEX ix_workers_earth_rating")
    op.drop_index("ix_workers_service_radius_km", table_name="workers")


def downgrade() -> None:
    """Back to the place index and the widest-radius probe."""
    op.create_index("ix_workers_service_radius_km", "workers", ["service_radius_km"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_workers_earth_rating ON workers USING gist"
            f" (ll_to_earth(lat, lng), {RATING})"
        )
        op.execute("DROP INDEX ix_workers_reach_rating")
