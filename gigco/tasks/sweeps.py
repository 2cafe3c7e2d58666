"""Beat's sweep: applies due deadlines, arms the ones due soon, re-kicks stuck steps and
refunds whose run died."""

from __future__ import annotations

import datetime as dt
import logging
import time

from gigco import clock
from gigco.lifecycle import unsent
from gigco.lifecycle.disputes import due_refunds
from gigco.lifecycle.timers import due_timers, stuck_steps
from gigco.lifecycle.transitions import Due
from gigco.metrics import SWEEP_DURATION
from gigco.tasks.app import app
from gigco.tasks.base import LifecycleTask
from gigco.tasks.celery_settings import RECOVERY_QUEUE
from gigco.tasks.dispatch import arming_horizon, send_each
from gigco.tasks.names import SWEEP_TASK
from gigco.tasks.refunds import send_refunds
from gigco.tasks.runtime import runtime
from gigco.tasks.webhooks import send_deliveries
from gigco.webhooks import due_deliveries

log = logging.getLogger("gigco.sweeps")


@app.task(base=LifecycleTask, name=SWEEP_TASK)
def sweep() -> dict[str, int]:
    """One sweep: deadlines due before the next sweep and not yet sent get a task, stuck
    steps another; at most GIGCO_SWEEP_BATCH in all, the rest wait for the next sweep."""
    started = time.perf_counter()  # metrics: sweep duration
    rt = runtime()
    now = clock.now()
    settings = rt.settings
    horizon = arming_horizon(settings).total_seconds()
    with rt.sessions() as session, session.begin():
        timers = due_timers(
            session,
            now=now,
            horizon_seconds=horizon,
            grace_seconds=settings.stuck_step_grace_seconds,
            batch=settings.sweep_batch,
            interval_seconds=settings.sweep_interval_seconds,
        )
        stuck = stuck_steps(
            session,
            now=now,
            grace_seconds=settings.stuck_step_grace_seconds,
            batch=settings.sweep_batch - len(timers),
        )
        deliveries = due_deliveries(
            session,
            now=now,
            horizon_seconds=horizon,
            grace_seconds=settings.stuck_step_grace_seconds,
        )
        refunds = due_refunds(session, now, settings.sweep_batch)
    # Late work (deadlines overdue past the grace, stuck steps) goes to the recovery queue,
    # so a backlog after an outage never delays a deadline due now.
    overdue = now - dt.timedelta(seconds=settings.stuck_step_grace_seconds)
    late: list[Due] = list(stuck)
    fresh: list[Due] = []
    for due in timers:
        (late if due.at is not None and due.at <= overdue else fresh).append(due)
    # One publish that fails skips that one send (counted in gigco_publish_failures_total);
    # the rest of the batch still goes, and its claim is released for the next sweep.
    sent_fresh, failed = send_each(fresh, now=now)
    sent_late, failed_late = send_each(late, now=now, queue=RECOVERY_QUEUE)
    failed += failed_late
    kicked = send_deliveries(deliveries, now=now)
    unsent_kicks = [i for i, at in deliveries if at is None] if kicked < len(deliveries) else []
    if failed or unsent_kicks:
        with rt.sessions() as session, session.begin():
            unsent.release(
                session,
                timers=[d.job_id for d in failed if d.at is not None],
                steps=[d.job_id for d in failed if d.at is None],
                deliveries=unsent_kicks,
                claimed_at=now,
                grace_seconds=settings.stuck_step_grace_seconds,
            )
    sent = sent_fresh + sent_late + kicked + send_refunds(refunds)
    SWEEP_DURATION.observe(time.perf_counter() - started)
    counts = {
        "timers": len(timers),
        "stuck": len(stuck),
        "deliveries": len(deliveries),
        "refunds": len(refunds),
        "sent": sent,
        "unsent": len(failed) + len(unsent_kicks),
    }
    log_sweep(counts)
    return counts


def log_sweep(counts: dict[str, int]) -> None:
    """Log a sweep at INFO when it found or sent something, else at DEBUG: an idle sweep is
    routine (one a second in development) and would drown the log."""
    log.log(logging.INFO if any(counts.values()) else logging.DEBUG, "sweep", extra=counts)
