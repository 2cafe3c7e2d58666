"""Rows for domain tests, written through a Session (flushed, not committed)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import utcnow
from gigco.models import Category, Consumer, Job, JobStatus, Worker

_n = itertools.count(1)
BERLIN = (52.52, 13.405)


def category(session: Session, name: str = "plumbing") -> Category:
    """A seeded category."""
    return session.scalars(sa.select(Category).where(Category.name == name)).one()


def consumer(session: Session, **fields: Any) -> Consumer:
    """A consumer."""
    n = next(_n)
    row = Consumer(
        name=f"Consumer {n}", email=f"fc{n}-{utcnow().timestamp()}@example.com", **fields
    )
    session.add(row)
    session.flush()
    return row


def worker(
    session: Session,
    *,
    skills: tuple[str, ...] = ("plumbing",),
    at: tuple[float, float] = BERLIN,
    **fields: Any,
) -> Worker:
    """An available worker in Berlin with a 25 km radius unless told otherwise."""
    n = next(_n)
    fields.setdefault("service_radius_km", 25.0)
    row = Worker(
        name=f"Worker {n}",
        email=f"fw{n}-{utcnow().timestamp()}@example.com",
        lat=at[0],
        lng=at[1],
        skills=[category(session, s) for s in skills],
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def job(
    session: Session,
    owner: Consumer | None = None,
    *,
    status: JobStatus = JobStatus.DRAFT,
    start: dt.datetime | None = None,
    hours: float = 2.0,
    at: tuple[float, float] = BERLIN,
    cat: str = "plumbing",
    **fields: Any,
) -> Job:
    """A job in ``status`` with a price, starting in two days unless told otherwise."""
    owner = owner or consumer(session)
    start = start or utcnow() + dt.timedelta(days=2)
    rate = category(session, cat).hourly_rate_cents
    subtotal = int(rate * hours)
    fee = round(subtotal / 10)
    priced = status != JobStatus.DRAFT
    row = Job(
        consumer_id=owner.id,
        category=category(session, cat),
        title="Fix the sink",
        lat=at[0],
        lng=at[1],
        scheduled_start=start,
        scheduled_end=start + dt.timedelta(hours=hours),
        estimated_hours=hours,
        status=status,
        subtotal_cents=subtotal if priced else None,
        fee_cents=fee if priced else None,
        price_cents=subtotal + fee if priced else None,
        **fields,
    )
    session.add(row)
    session.flush()
    return row
