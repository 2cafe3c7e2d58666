"""Demo accounts around a city for ``gigco seed``: workers scattered near its centre and
consumers, each signed up through the product's own account code, with their tokens."""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle import accounts
from gigco.models import Category

# Centres (lat, lng) of the cities a demo can be seeded around.
CITIES: dict[str, tuple[float, float]] = {
    "berlin": (52.5200, 13.4050),
    "london": (51.5074, -0.1278),
    "paris": (48.8566, 2.3522),
    "madrid": (40.4168, -3.7038),
    "new-york": (40.7128, -74.0060),
    "san-francisco": (37.7749, -122.4194),
    "sao-paulo": (-23.5505, -46.6333),
    "tokyo": (35.6762, 139.6503),
    "sydney": (-33.8688, 151.2093),
}
SPREAD_KM = 8.0  # workers and consumers live within this distance of the centre
RADIUS_KM = 15.0  # a seeded worker's service radius: it covers the whole seeded area


@dataclass(frozen=True)
class Seeded:
    """One demo account and its token (shown once)."""

    role: str
    id: int
    name: str
    email: str
    lat: float
    lng: float
    token: str


def _near(centre: tuple[float, float], rng: random.Random) -> tuple[float, float]:
    """A point uniformly within ``SPREAD_KM`` of ``centre``, rounded to about 10 m."""
    distance = SPREAD_KM * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    lat = centre[0] + distance / 111.32 * math.cos(bearing)
    lng = centre[1] + distance / (111.32 * math.cos(math.radians(centre[0]))) * math.sin(bearing)
    return round(lat, 4), round(lng, 4)


def seed(
    session: Session, *, city: str, workers: int, consumers: int, seed: int | None = None
) -> list[Seeded]:
    """Sign up ``workers`` and ``consumers`` around ``city``; flushes, the caller commits.

    Emails carry a random run tag, so seeding twice adds accounts rather than failing.
    """
    centre = CITIES[city]
    rng = random.Random(seed)
    tag = secrets.token_hex(3)
    skills = list(session.scalars(sa.select(Category.name).order_by(Category.name)))
    made: list[Seeded] = []
    for n in range(1, workers + 1):
        lat, lng = _near(centre, rng)
        name, email = f"Demo worker {n}", f"worker{n}.{tag}@{city}.seed.example"
        worker, token = accounts.sign_up_worker(
            session,
            name=name,
            email=email,
            skills=rng.sample(skills, k=min(2, len(skills))),
            lat=lat,
            lng=lng,
            service_radius_km=RADIUS_KM,
            available=True,
        )
        made.append(Seeded("worker", worker.id, name, email, lat, lng, token))
    for n in range(1, consumers + 1):
        lat, lng = _near(centre, rng)
        name, email = f"Demo consumer {n}", f"consumer{n}.{tag}@{city}.seed.example"
        consumer, token = accounts.sign_up_consumer(
            session, name=name, email=email, payment_method="pm_card_visa"
        )
        made.append(Seeded("consumer", consumer.id, name, email, lat, lng, token))
    return made
