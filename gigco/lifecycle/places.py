"""Approximate places: where a job is, as a worker who has not taken it may know.

The globe is cut into cells about ``CELL_KM`` on a side: rows of equal height in latitude,
each row cut into as many equal columns as fit its circumference (so a cell is about as wide
as it is tall at every latitude, and a row's columns meet at the antimeridian). A place is
shown as its cell's centre: at most about 0.7 km from the truth (half a cell's diagonal;
a little more only in the rings around the poles). Snapping is a function of the place
alone, never random: every read of a job, and every job posted from the same address,
shows the same centre, so no number of reads or jobs averages out to the true place.
"""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088  # the mean radius, as matching's haversine (gigco.lifecycle.matching)
KM_PER_DEGREE = 2 * math.pi * EARTH_RADIUS_KM / 360
CELL_KM = 1.0
_ROWS = round(180 * KM_PER_DEGREE / CELL_KM)
_ROW_DEGREES = 180 / _ROWS
_DECIMALS = 5  # a cell centre to about a metre: the digits beyond say nothing


def _columns(row: int) -> int:
    """How many cells row ``row`` (counted from the south pole) is cut into."""
    centre = -90 + (row + 0.5) * _ROW_DEGREES
    around = 360 * KM_PER_DEGREE * math.cos(math.radians(centre))
    return max(1, round(around / CELL_KM))


def approximate(lat: float, lng: float) -> tuple[float, float]:
    """The centre of the ~1 km cell holding (``lat``, ``lng``): what candidates are shown."""
    row = min(int((lat + 90) / _ROW_DEGREES), _ROWS - 1)
    columns = _columns(row)
    column = min(int((lng + 180) / (360 / columns)), columns - 1)
    return (
        round(-90 + (row + 0.5) * _ROW_DEGREES, _DECIMALS),
        round(-180 + (column + 0.5) * 360 / columns, _DECIMALS),
    )


def km_between(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle (haversine) distance in kilometres, for display: how far a worker is
    from a job's approximate place (matching measures in SQL, ``great_circle_km``)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
