"""Matching's distance: the great-circle formula the candidate query uses, evaluated by SQLite
in memory (the same SQL runs on PostgreSQL: tests/lifecycle/test_matching.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gigco import db
from gigco.db import make_engine
from gigco.lifecycle.matching import EARTH_RADIUS_KM, great_circle_km

BERLIN = (52.52, 13.405)
PARIS = (48.8566, 2.3522)


@pytest.fixture(scope="module")
def connection() -> Iterator[sa.Connection]:
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def km(connection: sa.Connection):  # type: ignore[no-untyped-def]
    def distance(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
        return connection.scalar(sa.select(great_circle_km(lat1, lng1, lat2, lng2)))  # type: ignore[return-value]

    return distance


def test_great_circle_distance_berlin_to_paris(km) -> None:  # type: ignore[no-untyped-def]
    assert km(*BERLIN, *PARIS) == pytest.approx(878, abs=2)


def test_distance_is_zero_to_itself_and_symmetric(km) -> None:  # type: ignore[no-untyped-def]
    assert km(*BERLIN, *BERLIN) == 0
    assert km(*BERLIN, *PARIS) == pytest.approx(km(*PARIS, *BERLIN))


def test_distance_along_a_meridian_and_to_the_antipode(km) -> None:  # type: ignore[no-untyped-def]
    one_degree = 2 * math.pi * EARTH_RADIUS_KM / 360
    assert km(0, 0, 1, 0) == pytest.approx(one_degree)
    assert km(52.52, 13.405, 52.52 + 0.2, 13.405) == pytest.approx(0.2 * one_degree)
    # Rounding may push the haversine term past 1 at the antipode; it is clamped.
    assert km(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert km(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_a_sqlite_built_without_math_functions_gets_the_same_distances(
    km,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(db, "_sqlite_has_math", lambda: False)
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as conn:
            fallback = conn.scalar(sa.select(great_circle_km(*BERLIN, *PARIS)))
            assert conn.scalar(sa.select(sa.func.radians(None))) is None
    finally:
        engine.dispose()
    assert fallback == pytest.approx(km(*BERLIN, *PARIS), rel=1e-12)
