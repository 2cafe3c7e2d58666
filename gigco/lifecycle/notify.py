"""Notifications to consumers and workers."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.models import Notification

# A Core INSERT, written at once: the notification needs no ORM object, and a unit-of-work
# flush per step cost more than the statement (bench/profile.py). Column defaults (the time,
# the writing transaction) apply as for the model.
_INSERT = sa.insert(cast(sa.Table, Notification.__table__))


def notify_consumer(
    session: Session,
    consumer_id: int,
    kind: str,
    message: str,
    *,
    job_id: int | None = None,
    **data: Any,
) -> None:
    """Write a notification row for a consumer."""
    _write(
        session,
        consumer_id=consumer_id,
        worker_id=None,
        job_id=job_id,
        kind=kind,
        message=message,
        data=data,
    )


def notify_worker(
    session: Session,
    worker_id: int,
    kind: str,
    message: str,
    *,
    job_id: int | None = None,
    **data: Any,
) -> None:
    """Write a notification row for a worker."""
    _write(
        session,
        consumer_id=None,
        worker_id=worker_id,
        job_id=job_id,
        kind=kind,
        message=message,
        data=data,
    )


def _write(session: Session, **row: Any) -> None:
    session.execute(_INSERT, row)
