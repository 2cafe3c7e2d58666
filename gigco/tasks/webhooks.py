"""Webhook delivery on its own queue: claim and commit, send, record in a new transaction."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from gigco import clock, metrics, webhooks
from gigco.tasks.app import app
from gigco.tasks.base import DurableTask
from gigco.tasks.celery_settings import WEBHOOK_QUEUE
from gigco.tasks.dispatch import arming_horizon, broker_timing, published
from gigco.tasks.names import DELIVER_TASK, FAN_OUT_TASK
from gigco.tasks.runtime import runtime

log = logging.getLogger("gigco.webhooks")


DueNow = int
"""A delivery to send now, by its id: what the outbox kicks when its transaction commits."""
DueAt = tuple[int, dt.datetime | None]
"""A delivery id and when it falls due (None: now): what a sweep or a retry arms."""
Kick = DueNow | DueAt
"""One delivery handed to the broker: the senders take either form."""


def _due_at(kicks: Iterable[Kick]) -> list[DueAt]:
    return [k if isinstance(k, tuple) else (k, None) for k in kicks]


def deliver_each(kicks: Iterable[Kick], *, now: dt.datetime | None = None) -> int:
    """Send a deliver task per delivery (with an ETA when given one in the future)."""
    now = now or clock.now()
    """Send a deliver task per delivery (with an ETA when given one in the future); returns
    how many were published (one the broker refuses is skipped, the rest still go)."""
    now = now or clock.now()
    sent = 0
    for delivery_id, at in _due_at(kicks):
        options = broker_timing(at) if at is not None and at > now else {}
        sent += published(DELIVER_TASK, [delivery_id], queue=WEBHOOK_QUEUE, **options)
    return sent


def send_deliveries(kicks: Iterable[Kick], *, now: dt.datetime | None = None) -> int:
    """Kick deliveries in one broker message: a deliver task for one, else a ``fan_out``.

    What a transaction or a sweep kicks costs its process one publish, however many
    deliveries it wrote; the webhooks worker sends a deliver task per delivery, so one
    slow endpoint never holds up another's. Returns how many deliveries were kicked (none
    when the broker refused the message: the sweep kicks them again).
    """
    items = _due_at(kicks)
    if len(items) == 1:
        return deliver_each(items, now=now)
    if items:
        args = [[i, at.isoformat() if at is not None else None] for i, at in items]
        if not published(FAN_OUT_TASK, [args], queue=WEBHOOK_QUEUE):
            return 0
    return len(items)


webhooks.install(send_deliveries)


@app.task(base=DurableTask, name=FAN_OUT_TASK)
def fan_out(kicks: list[list[Any]]) -> int:
    """A deliver task per delivery in ``kicks`` (``[id, ETA or null]``); returns how many.

    Those due now are first checked against the database: one its own message has already
    taken (the sweep re-kicks every pending row after the grace, which with a long queue is
    most of them) or one waiting for an earlier message of its job gets no second task.
    """
    now = clock.now()
    later = [(int(i), dt.datetime.fromisoformat(at)) for i, at in kicks if at is not None]
    due = [int(i) for i, at in kicks if at is None]
    if due:
        with runtime().sessions() as session, session.begin():
            due = webhooks.claimable(session, due, now=now)
    return deliver_each([*due, *later], now=now)


@app.task(base=DurableTask, name=DELIVER_TASK)
def deliver(delivery_id: int) -> str:
    """Send one webhook message if it is due and free to go; returns what came of it."""
    rt = runtime()
    settings = rt.settings
    with rt.sessions() as session, session.begin():
        claimed = webhooks.claim(session, delivery_id, settings=settings, now=clock.now())
    if claimed is None:
        return "skipped"
    answer = webhooks.send(claimed, settings=settings, now=clock.now())
    now = clock.now()
    with rt.sessions() as session, session.begin():
        recorded = webhooks.record_attempt(session, claimed, answer, settings=settings, now=now)
    metrics.WEBHOOK_DELIVERIES.labels(outcome=recorded.outcome).inc()
    if recorded.outcome == "delivered" and recorded.created_at is not None:
        metrics.WEBHOOK_LAG.observe((now - recorded.created_at).total_seconds())
    follow: list[Kick] = list(recorded.kick)
    horizon = now + arming_horizon(settings)
    if recorded.retry_at is not None and recorded.retry_at <= horizon:
        follow.append((delivery_id, recorded.retry_at))
    deliver_each(follow, now=now)
    log.info(
        "webhook attempt",
        extra={
            "delivery_id": delivery_id,
            "outcome": recorded.outcome,
            "status": answer.status,
            "error": answer.error,
        },
    )
    return recorded.outcome
