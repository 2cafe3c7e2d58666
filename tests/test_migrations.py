"""Alembic migrations: they build exactly the models' schema, and go down and up again."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import gigco.models  # noqa: F401  (registers the tables)
from gigco import migrate
from gigco.db import Base, UTCDateTime, make_engine
from tests.harness.database import create_database, drop_database
from tests.harness.env import server_url


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A scratch database beside the test database, dropped afterwards."""
    name = f"gigco_mig_{uuid.uuid4().hex[:8]}"
    yield create_database(server_url(), name, migrated=False)
    drop_database(server_url(), name)


def _diff(url: str) -> list[object]:
    """How the migrated schema differs from the models, less the columns kept unmapped for the
    previous release (``migrate.KEPT_FOR_PREVIOUS_RELEASE``)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    kept = {(t, c) for t, columns in migrate.KEPT_FOR_PREVIOUS_RELEASE.items() for c in columns}
    return [
        d
        for d in found
        if not (isinstance(d, tuple) and d[0] == "remove_column" and (d[2], d[3].name) in kept)
    ]


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


T = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
_JOBS = sa.table(
    "jobs",
    *(
        sa.column(name)
        for name in [
            "id",
            "consumer_id",
            "category_id",
            "title",
            "lat",
            "lng",
            "estimated_hours",
            "status",
            "currency",
            "match_round",
            "payment_attempts",
            "event_seq",
        ]
    ),
    *(
        sa.column(name, UTCDateTime())
        for name in [
            "scheduled_start",
            "scheduled_end",
            "created_at",
            "updated_at",
            "timer_at",
            "step_due_at",
            "next_match_at",
            "next_payment_at",
        ]
    ),
)
_DEADLINES = ("timer_at", "step_due_at", "next_match_at", "next_payment_at")


def _job(id_: int, status: str, **deadlines: dt.datetime | None) -> dict[str, object]:
    return {
        "id": id_,
        "consumer_id": 1,
        "category_id": 1,
        "title": "t",
        "lat": 52.5,
        "lng": 13.4,
        "estimated_hours": 1,
        "status": status,
        "currency": "USD",
        "match_round": 1,
        "payment_attempts": 0,
        "event_seq": 0,
        "scheduled_start": T,
        "scheduled_end": T,
        "created_at": T,
        "updated_at": T,
        **{name: deadlines.get(name) for name in _DEADLINES},
    }


def _deadlines(url: str, *names: str) -> dict[int, tuple[dt.datetime | None, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            columns = [_JOBS.c[name] for name in names]
            rows = conn.execute(sa.select(_JOBS.c.id, *columns).order_by(_JOBS.c.id)).all()
    finally:
        engine.dispose()
    return {row[0]: tuple(row[1:]) for row in rows}


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_0010_carries_the_shadow_deadlines_into_timer_at_and_back(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = (
        request.getfixturevalue("empty_database")
        if dialect == "postgresql"
        else f"sqlite:///{tmp_path / 'gigco.db'}"
    )
    migrate.upgrade(url, "0009")
    later = T + dt.timedelta(minutes=5)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO consumers (id, name, email, payment_method, rating_sum,"
                " rating_count, completed_jobs, created_at) VALUES"
                " (1, 'c', 'c@example.com', 'pm_card_visa', 0, 0, 0, '2030-01-01')"
            )
        )
        conn.execute(
            sa.insert(_JOBS),
            [
                _job(1, "accepted", next_match_at=later),  # between rounds, its deadline lost
                _job(2, "accepted", timer_at=later),  # an opportunity pending (none here)
                _job(3, "completed", next_payment_at=later, timer_at=later),  # a retry's wait
                _job(4, "completed", next_payment_at=T, step_due_at=T),  # due now
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO workers (id, name, email, lat, lng, service_radius_km, available,"
                " rating_sum, rating_count, completed_jobs, created_at, updated_at) VALUES"
                " (1, 'w', 'w@example.com', 52.5, 13.4, 25, true, 0, 0, 0, '2030-01-01',"
                " '2030-01-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO opportunities (job_id, worker_id, round, status, distance_km,"
                " offered_at, expires_at) VALUES (2, 1, 1, 'pending', 1, :t, :later)"
            ).bindparams(
                sa.bindparam("t", T, type_=UTCDateTime()),
                sa.bindparam("later", later, type_=UTCDateTime()),
            ),
        )
    engine.dispose()

    migrate.upgrade(url)
    assert _deadlines(url, "timer_at", "step_due_at") == {
        1: (later, None),
        2: (later, None),
        3: (later, None),
        4: (None, T),
    }
    migrate.downgrade(url, "0009")
    assert _deadlines(url, "next_match_at", "next_payment_at") == {
        1: (later, None),
        2: (None, None),
        3: (None, later),
        4: (None, T),
    }
