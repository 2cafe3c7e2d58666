"""Matching's pure parts: great-circle distance and the order in which workers are asked."""

from __future__ import annotations

import math

import pytest

from gigco.lifecycle.matching import EARTH_RADIUS_KM, Candidate, great_circle_km

BERLIN = (52.52, 13.405)
PARIS = (48.8566, 2.3522)


def test_great_circle_distance_berlin_to_paris() -> None:
    assert great_circle_km(*BERLIN, *PARIS) == pytest.approx(878, abs=2)


def test_distance_is_zero_to_itself_and_symmetric() -> None:
    assert great_circle_km(*BERLIN, *BERLIN) == 0
    assert great_circle_km(*BERLIN, *PARIS) == pytest.approx(great_circle_km(*PARIS, *BERLIN))


def test_distance_along_a_meridian_and_to_the_antipode() -> None:
    one_degree = 2 * math.pi * EARTH_RADIUS_KM / 360
    assert great_circle_km(0, 0, 1, 0) == pytest.approx(one_degree)
    assert great_circle_km(52.52, 13.405, 52.52 + 0.2, 13.405) == pytest.approx(0.2 * one_degree)
    # Rounding may push the haversine term past 1 at the antipode; it is clamped.
    assert great_circle_km(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert great_circle_km(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_ranks_by_rating_best_first_unrated_last_then_distance_then_id() -> None:
    top_far = Candidate(worker_id=1, rating=5.0, distance_km=20)
    top_near = Candidate(worker_id=2, rating=5.0, distance_km=1)
    middling = Candidate(worker_id=3, rating=3.5, distance_km=0.5)
    low = Candidate(worker_id=4, rating=1.0, distance_km=0.1)
    unrated_near = Candidate(worker_id=5, rating=None, distance_km=0.1)
    twin_b = Candidate(worker_id=7, rating=None, distance_km=2)
    twin_a = Candidate(worker_id=6, rating=None, distance_km=2)
    ranked = sorted(
        [twin_b, unrated_near, low, twin_a, middling, top_far, top_near],
        key=Candidate.rank_key,
    )
    assert [c.worker_id for c in ranked] == [2, 1, 3, 4, 5, 6, 7]


def test_a_rating_of_zero_is_still_rated() -> None:
    rated_zero = Candidate(worker_id=9, rating=0.0, distance_km=50)
    unrated = Candidate(worker_id=1, rating=None, distance_km=1)
    assert rated_zero.rank_key() < unrated.rank_key()
