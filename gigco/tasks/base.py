"""The task base class: it owns the transaction and the retry policy."""

from __future__ import annotations

import logging

from celery import Task
from sqlalchemy.exc import DBAPIError, OperationalError

from gigco import metrics
from gigco.db import utcnow
from gigco.lifecycle.states import DEADLINE_STEPS, Step
from gigco.lifecycle.steps import StepContext, run_step
from gigco.tasks.dispatch import send_after_commit
from gigco.tasks.runtime import runtime

log = logging.getLogger("gigco.tasks")


class LifecycleTask(Task):  # type: ignore[misc]
    """A step task: late ack, redelivered if the worker dies, retried on database trouble.

    The body runs in one transaction that commits on success and rolls back on error;
    follow-up steps are sent only after the commit.
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    autoretry_for = (OperationalError, DBAPIError)
    retry_backoff = 0.5
    retry_backoff_max = 30
    retry_jitter = True
    max_retries = 8

    def run_step(self, step: Step, job_id: int) -> int:
        """Run one lifecycle step on ``job_id``; returns how many follow-ups were due."""
        rt = runtime()
        ctx = StepContext(settings=rt.settings, gateway=rt.gateway, now=utcnow())
        timed = step in DEADLINE_STEPS  # only these can fire a deadline worth timing
        with rt.sessions() as session, session.begin():
            timer = metrics.due_timer(session, job_id, ctx.now) if timed else None
            dues = run_step(session, step, job_id, ctx)
            fired = timed and metrics.timer_fired(session, job_id, timer)
            send_after_commit(session, dues)
        if fired and timer is not None:
            late = (ctx.now - timer).total_seconds()
            metrics.TIMER_LATENESS.labels(step=step.value).observe(late)
        log.info("step done", extra={"job_id": job_id, "task": self.name, "due": len(dues)})
        return len(dues)
