"""Fixtures of the API tests: row counts, to prove that refused input wrote nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gigco.db import Base
from tests.api.helpers import RowCounts
from tests.conftest import KEEP_TABLES


@pytest.fixture
def row_counts(engine: sa.Engine) -> RowCounts:
    """A function returning the number of rows in every table but the seeded ones."""
    tables = [t for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES]

    def count() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0 for t in tables
            }

    return count
