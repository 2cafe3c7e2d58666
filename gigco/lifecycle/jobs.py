"""Posting jobs, with Idempotency-Key support, and listing them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.config import Settings
from gigco.db import built_once
from gigco.lifecycle.errors import Conflict, Forbidden, Invalid
from gigco.lifecycle.history import add_event
from gigco.lifecycle.policies import pin
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.schedule import Next
from gigco.lifecycle.test_clocks import clock_for_new_job
from gigco.lifecycle.transitions import Due, dues_of
from gigco.models import Category, IdempotencyKey, Job, JobEvent, Role


def request_fingerprint(body: dict[str, Any]) -> str:
    """A stable hash of a request body, to tell a true repeat from a different request."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, who: Principal, key: str, fingerprint: str) -> IdempotencyKey | None:
    """The stored response for a repeated key, None for a new key; Conflict for another body."""
    stored = session.scalar(
        sa.select(IdempotencyKey).where(
            IdempotencyKey.consumer_id == who.id, IdempotencyKey.key == key
        )
    )
    if stored is not None and stored.request_hash != fingerprint:
        raise Conflict("This Idempotency-Key was already used with a different request body.")
    return stored


def create_job(
    session: Session,
    who: Principal,
    *,
    title: str,
    description: str | None,
    category: str,
    lat: float,
    lng: float,
    scheduled_start: dt.datetime,
    estimated_hours: float,
    now: dt.datetime,
    settings: Settings,
    test_clock_id: int | None = None,
) -> tuple[Job, list[Due]]:
    """Write a draft job, pinned to the current lifecycle policy (``settings`` and the
    categories' rates), and its first history event; pricing becomes due. A job on a test
    clock of the consumer's (``test_clock_id``) is written at the clock's time."""
    if who.role != Role.CONSUMER or who.id is None:
        raise Forbidden("Only consumers may post jobs.")
    if test_clock_id is not None:
        now = clock_for_new_job(session, who, test_clock_id).frozen_time
        if scheduled_start <= now:
            raise Invalid(
                "scheduled_start must be after the test clock's time.",
                errors={"scheduled_start": [f"must be after {now.isoformat()}"]},
            )
    # Every category at once (a handful of rows, the same round trip as the job's own): the
    # policy holds all their rates.
    known = {c.name: c for c in session.scalars(_all_categories())}
    cat = known.get(category)
    if cat is None:
        names = ", ".join(sorted(known))
        raise Invalid(
            f"Unknown category; the categories are: {names}.",
            errors={"category": [f"Unknown category: {category}; choose one of: {names}."]},
        )
    policy = pin(session, settings, {name: c.hourly_rate_cents for name, c in known.items()})
    job = Job(
        consumer_id=who.id,
        category=cat,
        title=title,
        description=description,
        lat=lat,
        lng=lng,
        scheduled_start=scheduled_start,
        scheduled_end=scheduled_start + dt.timedelta(hours=estimated_hours),
        estimated_hours=estimated_hours,
        event_seq=1,
        policy_version=policy.version,
        test_clock_id=test_clock_id,
        created_at=now,
        updated_at=now,
        **Next.now().columns(now),
    )
    session.add(job)
    session.flush()
    event = JobEvent(
        job_id=job.id,
        seq=1,
        type="created",
        from_status=None,
        to_status=job.status,
        actor=who.actor,
        created_at=now,
        data={"category": category, "estimated_hours": estimated_hours},
    )
    add_event(session, event)
    return job, dues_of(job)


@built_once
def _all_categories() -> sa.Select[Category]:
    return sa.select(Category)


def remember_response(
    session: Session,
    who: Principal,
    key: str,
    fingerprint: str,
    job: Job,
    status: int,
    body: dict[str, Any],
) -> None:
    """Store the first response to ``key`` (unique per consumer; a concurrent twin fails)."""
    assert who.id is not None
    session.add(
        IdempotencyKey(
            consumer_id=who.id,
            key=key,
            request_hash=fingerprint,
            job_id=job.id,
            response_status=status,
            response_body=body,
        )
    )
    session.flush()
