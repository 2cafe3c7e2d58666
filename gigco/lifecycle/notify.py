"""Notifications to consumers and workers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gigco.models import Notification


def notify_consumer(
    session: Session,
    consumer_id: int,
    kind: str,
    message: str,
    *,
    job_id: int | None = None,
    **data: Any,
) -> None:
    """Queue a notification row for a consumer."""
    session.add(
        Notification(consumer_id=consumer_id, job_id=job_id, kind=kind, message=message, data=data)
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
    """Queue a notification row for a worker."""
    session.add(
        Notification(worker_id=worker_id, job_id=job_id, kind=kind, message=message, data=data)
    )
