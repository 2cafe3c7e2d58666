"""The approximate place a candidate is shown: near the truth, and the same every time."""

from __future__ import annotations

import itertools

from gigco.lifecycle.places import approximate, km_between


def test_a_place_is_shown_within_a_kilometre_everywhere_on_the_globe() -> None:
    lats = [-90, -89.9999, -89.99, -60.123, -33.867123, 0, 0.004, 45.5, 52.52, 89.99, 90]
    lngs = [-180, -179.9999, -0.001, 0, 13.405, 151.207345, 179.9999, 180]
    for lat, lng in itertools.product(lats, lngs):
        shown = approximate(lat, lng)
        assert -90 <= shown[0] <= 90 and -180 <= shown[1] <= 180
        assert km_between(lat, lng, *shown) <= 0.9, (lat, lng, shown)
        assert approximate(lat, lng) == shown  # never a random jitter


def test_every_place_in_a_cell_is_shown_as_its_centre() -> None:
    """Jobs posted from one address, or from next door, show the same place: nothing to
    average out."""
    centre = approximate(52.52, 13.405)
    assert centre != (52.52, 13.405)
    assert approximate(*centre) == centre
    near = [approximate(centre[0] + d, centre[1] + d) for d in (-0.002, -0.001, 0.001, 0.002)]
    assert near == [centre] * 4
