"""Alembic migrations: they build exactly the models' schema, and go down and up again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import gigco.models  # noqa: F401  (registers the tables)
from gigco import migrate
from gigco.db import Base, make_engine
from tests.harness.database import create_database, drop_database
from tests.harness.env import server_url


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A scratch database beside the test database, dropped afterwards."""
    name = f"gigco_mig_{uuid.uuid4().hex[:8]}"
    yield create_database(server_url(), name, migrated=False)
    drop_database(server_url(), name)


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def test_migrations_build_the_models_schema_and_round_trip(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    assert _diff(empty_database) == []
    migrate.downgrade(empty_database, "base")
    migrate.upgrade(empty_database)
    assert _diff(empty_database) == []
    engine = make_engine(empty_database)
    with engine.connect() as conn:
        rates = dict(conn.execute(sa.text("SELECT name, hourly_rate_cents FROM categories")).all())
    engine.dispose()
    assert set(rates) >= {"cleaning", "plumbing", "electrical", "moving", "handyman", "gardening"}


def test_migrations_run_on_the_embedded_sqlite_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'gigco.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM categories")) == 6
    engine.dispose()
