"""Webhook delivery on its own queue: claim and commit, send, record in a new transaction."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from gigco import metrics
from gigco.db import utcnow
from gigco.lifecycle import webhooks
from gigco.tasks.app import app
from gigco.tasks.base import DurableTask
from gigco.tasks.celery_settings import WEBHOOK_QUEUE
from gigco.tasks.dispatch import broker_eta
from gigco.tasks.names import DELIVER_TASK
from gigco.tasks.runtime import runtime

log = logging.getLogger("gigco.webhooks")


def send_deliveries(
    deliveries: Iterable[int | tuple[int, dt.datetime | None]], *, now: dt.datetime | None = None
) -> int:
    """Send a delivery task per id (with an ETA when given one in the future)."""
    now = now or utcnow()
    sent = 0
    for item in deliveries:
        delivery_id, at = item if isinstance(item, tuple) else (item, None)
        options = {"eta": broker_eta(at)} if at is not None and at > now else {}
        app.send_task(DELIVER_TASK, args=[delivery_id], queue=WEBHOOK_QUEUE, **options)
        sent += 1
    return sent


webhooks.use_sender(send_deliveries)


@app.task(base=DurableTask, name=DELIVER_TASK)
def deliver(delivery_id: int) -> str:
    """Send one webhook message if it is due and free to go; returns what came of it."""
    rt = runtime()
    settings = rt.settings
    with rt.sessions() as session, session.begin():
        claimed = webhooks.claim(session, delivery_id, settings=settings, now=utcnow())
    if claimed is None:
        return "skipped"
    answer = webhooks.send(claimed, settings=settings, now=utcnow())
    now = utcnow()
    with rt.sessions() as session, session.begin():
        recorded = webhooks.record_attempt(session, claimed, answer, settings=settings, now=now)
    metrics.WEBHOOK_DELIVERIES.labels(outcome=recorded.outcome).inc()
    if recorded.outcome == "delivered" and recorded.created_at is not None:
        metrics.WEBHOOK_LAG.observe((now - recorded.created_at).total_seconds())
    follow = list(recorded.kick)
    horizon = now + dt.timedelta(seconds=settings.sweep_interval_seconds * 1.5)
    if recorded.retry_at is not None and recorded.retry_at <= horizon:
        follow.append((delivery_id, recorded.retry_at))  # type: ignore[arg-type]
    send_deliveries(follow, now=now)
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
