"""Sending due steps to Celery, only after the transaction that made them due commits."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from gigco import clock
from gigco.broker import STEPS_QUEUE, is_rabbitmq
from gigco.config import Settings
from gigco.db import enqueue_after_commit
from gigco.lifecycle.transitions import Due
from gigco.metrics import PUBLISH_FAILURES
from gigco.tasks.app import app
from gigco.tasks.names import step_task_name
from gigco.tasks.runtime import runtime

log = logging.getLogger(__name__)

# Celery's native delayed delivery (RabbitMQ quorum queues) delays by whole seconds and
# refuses a countdown under one second (kombu's calculate_routing_key raises).
NATIVE_DELAY_FLOOR = dt.timedelta(seconds=1)


def broker_timing(at: dt.datetime) -> dict[str, object]:
    """The send options that arm a task due at ``at`` on this process's broker.

    An exact ETA on Redis, given on this host's clock (``clock.to_host``): the worker that
    receives it judges it with its own, and a step that arrives early (its host's clock runs
    ahead of this one's) finds its deadline not yet passed on the database's clock and sends
    itself again, by its own host's clock. On RabbitMQ a countdown of at least
    ``NATIVE_DELAY_FLOOR``: Celery turns an ETA into whole seconds with its own clock, so an
    ETA a hair over a second away becomes a countdown of 0 (an error) if the thread stalls
    before Celery reads its clock (docs/deploy.md); a countdown is kept as given.
    """
    if is_rabbitmq(runtime().settings.broker_url):
        seconds = (at - clock.now()).total_seconds()
        return {"countdown": max(NATIVE_DELAY_FLOOR.total_seconds(), seconds)}
    return {"eta": clock.to_host(at)}


def arming_horizon(settings: Settings) -> dt.timedelta:
    """How far ahead a deadline is sent to the broker: 1.5 sweep intervals, so the sweep
    before it is due sends it; on RabbitMQ one ``NATIVE_DELAY_FLOOR`` more, so every deadline
    is sent at least that far ahead and fires on time rather than up to a second late."""
    seconds = settings.sweep_interval_seconds * 1.5
    if is_rabbitmq(settings.broker_url):
        seconds += NATIVE_DELAY_FLOOR.total_seconds()
    return dt.timedelta(seconds=seconds)


class PublishFailed(Exception):
    """Some messages could not be published (the rest were); ``failed`` lists them."""

    def __init__(self, failed: list[Due]):
        super().__init__(f"{len(failed)} message(s) not published: {failed}")
        self.failed = failed


def publish(name: str, args: list[Any], **options: Any) -> None:
    """Publish one task message: the one place GigCo's dispatch hands a message to Celery."""
    app.send_task(name, args=args, **options)


def published(name: str, args: list[Any], *, queue: str | None, **options: Any) -> bool:
    """``publish``, with a failure kept to this one message: logged, counted in
    ``gigco_publish_failures_total`` and answered False, never raised."""
    try:
        publish(name, args, **({"queue": queue} if queue else {}), **options)
    except Exception:  # any broker failure: refused, unreachable, unconfirmed
        where = queue or app.conf.task_routes.get(name, {}).get("queue") or STEPS_QUEUE
        PUBLISH_FAILURES.labels(queue=where).inc()
        log.warning("could not publish %s%s; skipped", name, args, exc_info=True)
        return False
    return True


def send_each(
    dues: Iterable[Due], *, now: dt.datetime | None = None, queue: str | None = None
) -> tuple[int, list[Due]]:
    """Send each due step: now, as an ETA task inside the sweep horizon, or not at all.
    Returns how many were sent and those whose publish failed (each failure stays local:
    the others are still sent).

    A deadline further away than one sweep interval is left to the database; the sweeper
    arms it when it comes within the horizon, so no long timer waits in the broker.
    ``queue`` overrides the steps' queue (the sweeper sends late work to the recovery queue).
    """
    now = now or clock.now()
    settings = runtime().settings
    horizon = now + arming_horizon(settings)
    # RabbitMQ's publisher confirm is awaited at most this long (a blackholed broker).
    bounded: dict[str, object] = {"confirm_timeout": settings.broker_timeout_seconds}
    sent, failed = 0, []
    for due in dues:
        if due.at is not None and due.at > horizon:
            continue
        options = broker_timing(due.at) if due.at is not None and due.at > now else {}
        if published(step_task_name(due.step), [due.job_id], queue=queue, **bounded, **options):
            sent += 1
        else:
            failed.append(due)
    return sent, failed


def send(dues: Iterable[Due], *, now: dt.datetime | None = None, queue: str | None = None) -> int:
    """``send_each``, raising ``PublishFailed`` once every other due was sent when some
    could not be (a task's follow-ups: the task fails, the sweeper re-kicks what it left)."""
    sent, failed = send_each(dues, now=now, queue=queue)
    if failed:
        raise PublishFailed(failed)
    return sent


def send_after_commit(session: Session, dues: Iterable[Due]) -> None:
    """Send ``dues`` once ``session`` commits; nothing is sent if it rolls back."""
    pending = list(dues)
    if pending:
        enqueue_after_commit(session, lambda: send(pending))
