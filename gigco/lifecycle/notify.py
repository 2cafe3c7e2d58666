"""Notifications to consumers and workers."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.models import Notification

# A Core INSERT, written at once: the notification needs no ORM object, and a unit-of-work
# flush per step costs more than the statement (bench/profile.py). Column defaults (the time,
# the writing transaction) apply as for the model.
_INSERT = sa.insert(cast(sa.Table, Notification.__table__))


def to_consumer(
    consumer_id: int, kind: str, message: str, *, job_id: int | None = None, **data: Any
) -> dict[str, Any]:
    """A notification row for a consumer, for ``notify``."""
    return _row(consumer_id, None, kind, message, job_id, data)


def to_worker(
    worker_id: int, kind: str, message: str, *, job_id: int | None = None, **data: Any
) -> dict[str, Any]:
    """A notification row for a worker, for ``notify``."""
    return _row(None, worker_id, kind, message, job_id, data)


def notify(session: Session, *rows: dict[str, Any]) -> None:
    """Write notification rows (``to_consumer``, ``to_worker``) in one INSERT statement."""
    if rows:
        session.execute(_INSERT, list(rows))


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
    notify(session, to_consumer(consumer_id, kind, message, job_id=job_id, **data))


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
    notify(session, to_worker(worker_id, kind, message, job_id=job_id, **data))


def _row(
    consumer_id: int | None,
    worker_id: int | None,
    kind: str,
    message: str,
    job_id: int | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "consumer_id": consumer_id,
        "worker_id": worker_id,
        "job_id": job_id,
        "kind": kind,
        "message": message,
        "data": data,
    }
