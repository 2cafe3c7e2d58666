"""Request bodies: one builder per resource, valid unless told otherwise."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from typing import Any

_ids = itertools.count(1)
MISSING: Any = object()  # as a change, removes the field
BERLIN = {"lat": 52.52, "lng": 13.405}


def future(hours: float = 48) -> str:
    """An ISO time ``hours`` from now."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


def _apply(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**body, **changes}.items() if v is not MISSING}


def unique_email(prefix: str) -> str:
    """An email address no other run or test uses."""
    return f"{prefix}{next(_ids)}-{time.time_ns()}@example.com"


def consumer_body(**changes: Any) -> dict[str, Any]:
    """A consumer's sign-up with a unique email."""
    n = next(_ids)
    return _apply({"name": f"Consumer {n}", "email": unique_email("c")}, changes)


def worker_body(**changes: Any) -> dict[str, Any]:
    """A worker's sign-up near Berlin with plumbing skills and a 25 km radius."""
    n = next(_ids)
    body = {
        "name": f"Worker {n}",
        "email": unique_email("w"),
        "skills": ["plumbing"],
        "location": dict(BERLIN),
        "service_radius_km": 25,
    }
    return _apply(body, changes)


def job_body(*, start: dt.datetime | None = None, **changes: Any) -> dict[str, Any]:
    """A plumbing job in Berlin starting in two days (or at ``start``), for 2 hours."""
    body = {
        "title": "Fix the sink",
        "description": "It drips.",
        "category": "plumbing",
        "location": {"lat": 52.53, "lng": 13.41},
        "scheduled_start": start.isoformat() if start else future(),
        "estimated_hours": 2,
    }
    return _apply(body, changes)
