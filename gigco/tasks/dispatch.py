"""Sending due steps to Celery, only after the transaction that made them due commits."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlalchemy.orm import Session

from gigco.broker import is_rabbitmq
from gigco.db import enqueue_after_commit, utcnow
from gigco.lifecycle.transitions import Due
from gigco.tasks.app import app
from gigco.tasks.names import step_task_name
from gigco.tasks.runtime import runtime

log = logging.getLogger(__name__)

# Celery's native delayed delivery (RabbitMQ quorum queues) delays by whole seconds and
# refuses a countdown under one second (kombu's calculate_routing_key raises): an ETA
# nearer than that is sent this far out instead, at most about a second late.
NATIVE_DELAY_FLOOR = dt.timedelta(seconds=1.02)


def broker_eta(at: dt.datetime) -> dt.datetime:
    """The ETA to send for a task due at ``at``, as this process's broker can arm it."""
    if is_rabbitmq(runtime().settings.broker_url):
        return max(at, utcnow() + NATIVE_DELAY_FLOOR)
    return at


def send(dues: Iterable[Due], *, now: dt.datetime | None = None, queue: str | None = None) -> int:
    """Send each due step: now, as an ETA task inside the sweep horizon, or not at all.

    A deadline further away than one sweep interval is left to the database; the sweeper
    arms it when it comes within the horizon, so no long timer waits in the broker.
    ``queue`` overrides the steps' queue (the sweeper sends late work to the recovery queue).
    """
    now = now or utcnow()
    settings = runtime().settings
    horizon = now + dt.timedelta(seconds=settings.sweep_interval_seconds * 1.5)
    # RabbitMQ's publisher confirm is awaited at most this long (a blackholed broker).
    bounded: dict[str, object] = {"confirm_timeout": settings.broker_timeout_seconds}
    if queue is not None:
        bounded["queue"] = queue
    sent = 0
    for due in dues:
        if due.at is not None and due.at > horizon:
            continue
        options = {"eta": broker_eta(due.at)} if due.at is not None and due.at > now else {}
        app.send_task(step_task_name(due.step), args=[due.job_id], **bounded, **options)
        sent += 1
    return sent


def send_after_commit(session: Session, dues: Iterable[Due]) -> None:
    """Send ``dues`` once ``session`` commits; nothing is sent if it rolls back."""
    pending = list(dues)
    if pending:
        enqueue_after_commit(session, lambda: send(pending))
