"""Rows for domain tests, written through a Session (flushed, not committed).

They are built through the product's own code wherever it has some: accounts (and their
tokens) through ``gigco.lifecycle.accounts``, prices through ``gigco.lifecycle.pricing``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import clock
from gigco.lifecycle import accounts
from gigco.lifecycle.pricing import price_for
from gigco.models import (
    AttemptOutcome,
    Category,
    Consumer,
    Job,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    Worker,
)

_n = itertools.count(1)
BERLIN = (52.52, 13.405)


def category(session: Session, name: str = "plumbing") -> Category:
    """A seeded category."""
    return session.scalars(sa.select(Category).where(Category.name == name)).one()


def _set(session: Session, row: Consumer | Worker, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(row, name, value)
    session.flush()


def signed_up_consumer(
    session: Session, *, payment_method: str = "pm_card_visa", **fields: Any
) -> tuple[Consumer, str]:
    """A consumer signed up by the account code, with its bearer token."""
    n = next(_n)
    row, token = accounts.sign_up_consumer(
        session,
        name=f"Consumer {n}",
        email=f"fc{n}-{clock.now().timestamp()}@example.com",
        payment_method=payment_method,
    )
    _set(session, row, fields)
    return row, token


def consumer(session: Session, **fields: Any) -> Consumer:
    """A consumer (``fields`` set after sign-up)."""
    return signed_up_consumer(session, **fields)[0]


def signed_up_worker(
    session: Session,
    *,
    skills: Sequence[str] = ("plumbing",),
    at: tuple[float, float] = BERLIN,
    service_radius_km: float = 25.0,
    available: bool = True,
    **fields: Any,
) -> tuple[Worker, str]:
    """A worker signed up by the account code, with its bearer token."""
    n = next(_n)
    row, token = accounts.sign_up_worker(
        session,
        name=f"Worker {n}",
        email=f"fw{n}-{clock.now().timestamp()}@example.com",
        skills=list(skills),
        lat=at[0],
        lng=at[1],
        service_radius_km=service_radius_km,
        available=available,
    )
    _set(session, row, fields)
    return row, token


def worker(session: Session, **fields: Any) -> Worker:
    """An available worker in Berlin with plumbing skills and a 25 km radius unless told."""
    return signed_up_worker(session, **fields)[0]


def job(
    session: Session,
    owner: Consumer | None = None,
    *,
    status: JobStatus = JobStatus.DRAFT,
    start: dt.datetime | None = None,
    hours: float = 2.0,
    at: tuple[float, float] = BERLIN,
    cat: str = "plumbing",
    title: str = "Fix the sink",
    **fields: Any,
) -> Job:
    """A job in ``status``, priced as the product prices it past draft, starting in two days."""
    return jobs(
        session, 1, owner, status=status, start=start, hours=hours, at=at, cat=cat, title=title,
        **fields,
    )[0]  # fmt: skip


def jobs(
    session: Session,
    count: int,
    owner: Consumer | None = None,
    *,
    status: JobStatus = JobStatus.DRAFT,
    start: dt.datetime | None = None,
    hours: float = 2.0,
    at: tuple[float, float] = BERLIN,
    cat: str = "plumbing",
    title: str = "Fix the sink",
    **fields: Any,
) -> list[Job]:
    """``count`` jobs of one consumer, alike but for their ids (see ``job``)."""
    owner = owner or consumer(session)
    start = start or clock.now() + dt.timedelta(days=2)
    kind = category(session, cat)
    if status != JobStatus.DRAFT:
        price = price_for(kind.hourly_rate_cents, hours)
        fields = {
            "subtotal_cents": price.subtotal_cents,
            "fee_cents": price.fee_cents,
            "price_cents": price.price_cents,
            **fields,
        }
    rows = [
        Job(
            consumer_id=owner.id,
            category=kind,
            title=title,
            lat=at[0],
            lng=at[1],
            scheduled_start=start,
            scheduled_end=start + dt.timedelta(hours=hours),
            estimated_hours=hours,
            status=status,
            **fields,
        )
        for _ in range(count)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def opportunity(
    session: Session,
    job: Job,
    worker: Worker,
    *,
    round: int = 1,
    status: OpportunityStatus = OpportunityStatus.PENDING,
    distance_km: float = 1.0,
    expires_at: dt.datetime | None = None,
) -> Opportunity:
    """An opportunity of ``job`` offered to ``worker`` (pending, 15 minutes to answer)."""
    row = Opportunity(
        job_id=job.id,
        worker_id=worker.id,
        round=round,
        status=status,
        distance_km=distance_km,
        expires_at=expires_at or clock.now() + dt.timedelta(minutes=15),
    )
    session.add(row)
    session.flush()
    return row


DECLINED = (AttemptOutcome.DECLINED, "pm_card_chargeDeclined: card declined")


def payment(
    session: Session,
    job: Job,
    *,
    status: PaymentStatus = PaymentStatus.FAILED,
    attempts: Sequence[tuple[AttemptOutcome, str | None]] = (DECLINED,),
) -> Payment:
    """The payment of a priced ``job`` under its idempotency key, with ``attempts`` recorded."""
    assert job.price_cents is not None and job.fee_cents is not None
    assert job.subtotal_cents is not None
    row = Payment(
        job_id=job.id,
        idempotency_key=f"job-{job.id}-intent-1",
        status=status,
        amount_cents=job.price_cents,
        fee_cents=job.fee_cents,
        worker_earnings_cents=job.subtotal_cents,
    )
    session.add(row)
    session.flush()
    session.add_all(
        PaymentAttempt(payment_id=row.id, job_id=job.id, number=n, outcome=outcome, detail=detail)
        for n, (outcome, detail) in enumerate(attempts, start=1)
    )
    session.flush()
    return row
