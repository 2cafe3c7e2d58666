"""The task base class: it owns the transaction, the retry policy and the timer-lateness reading."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from gigco import clock, metrics
from gigco.lifecycle import cancel_fees, payments, test_clocks
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import ChargeResult
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.schedule import DEADLINE_STEPS, Step
from gigco.lifecycle.steps import run_step
from gigco.lifecycle.transitions import Due
from gigco.models import Job
from gigco.tasks import schema
from gigco.tasks.dispatch import send, send_after_commit
from gigco.tasks.names import step_task_name
from gigco.tasks.runtime import runtime

log = logging.getLogger("gigco.tasks")

# The steps that charge through the gateway, each in two transactions around the call: its
# claim, and the record of its outcome (``LifecycleTask._pay``).
CHARGES: dict[
    Step,
    tuple[
        Callable[..., payments.Claim | list[Due]],
        Callable[[Session, payments.Claim, ChargeResult, StepContext], list[Due]],
    ],
] = {
    Step.PAY: (payments.claim_payment, payments.record_payment),
    Step.LATE_CANCEL_FEE: (cancel_fees.claim_fee, cancel_fees.record_fee),
}


class DurableTask(Task):
    """Late ack, redelivered if the worker dies, retried with backoff on database trouble:
    the delivery policy of every GigCo task."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    autoretry_for = (OperationalError, DBAPIError)
    retry_backoff = 0.5
    retry_backoff_max = 30
    retry_jitter = True
    max_retries = 8

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the message if this worker understands its schema; else send it back to the
        queue, unchanged, for a worker that does (``gigco.tasks.schema``)."""
        found = schema.schema_of(self.request)
        if schema.understood(found):
            return super().__call__(*args, **kwargs)
        metrics.TASKS_DEFERRED.labels(task=self.name, schema=str(found)).inc()
        log.warning(
            "message of an unknown schema sent back to the queue",
            extra={"task": self.name, "schema": found, "defer_seconds": schema.DEFER_SECONDS},
        )
        queue = (self.request.delivery_info or {}).get("routing_key")
        self.apply_async(
            args,
            kwargs,
            countdown=schema.DEFER_SECONDS,
            headers={schema.HEADER: found},
            **({"queue": queue} if queue else {}),
        )
        return None


class LifecycleTask(DurableTask):
    """A step task: the body runs in one transaction that commits on success and rolls back
    on error; follow-up steps are sent only after the commit."""

    abstract = True
    inline_follow_ups = 4  # due-now steps run in this task after it; any more are sent

    def run_step(self, step: Step, job_id: int) -> int:
        """Run one lifecycle step on ``job_id``, then the steps it makes due at once.

        Each step is its own transaction. A follow-up due now (price → offer, payment →
        review requests) runs here, after the commit, instead of a broker round trip away;
        the commit already recorded it in ``step_due_at``, so if this process dies first the
        sweeper re-kicks it. A follow-up that fails here is sent as its own task, with that
        task's retries. Returns how many steps were made due.
        """
        made_due = 0
        now = self._run_one(step, job_id)
        for _ in range(self.inline_follow_ups):
            if not now:
                break
            due = now.pop(0)
            try:
                now += self._run_one(due.step, due.job_id)
            except Exception:
                log.warning(
                    "follow-up step failed in this task; sending it as its own task",
                    exc_info=True,
                    extra={"job_id": due.job_id, "task": step_task_name(due.step)},
                )
                send([due])
            made_due += 1
        if now:
            send(now)
        return made_due + len(now)

    def _pay(self, step: Step, claim: payments.Claim) -> list[Due]:
        """The gateway call with no transaction open, then the outcome in a second one."""
        rt = runtime()
        result = payments.charge(rt.gateway, claim)
        with rt.sessions() as session, session.begin():
            ctx, on_clock = _context(session, claim.job_id)
            dues = CHARGES[step][1](session, claim, result, ctx)
            session.flush()
            if not on_clock:
                send_after_commit(session, [d for d in dues if d.at is not None])
        return dues

    def _run_one(self, step: Step, job_id: int) -> list[Due]:
        """One step in one transaction; sends its later dues after commit, returns the others.

        A job on a test clock runs at its clock's time, and its deadlines wait for the clock's
        advance (``gigco.tasks.test_clocks``) instead of the broker."""
        rt = runtime()
        timed = step in DEADLINE_STEPS  # only these can fire a deadline worth timing
        claim: payments.Claim | None = None
        with rt.sessions() as session, session.begin():
            ctx, on_clock = _context(session, job_id)
            timer = _due_deadline(session, job_id, ctx.now) if timed else None
            if step in CHARGES:  # transaction 1 of 2: claim the attempt; the gateway is after
                # The task's id names the claim: Celery's retry of this task (same id) after
                # its database connection died takes the claim over at once.
                claimed = CHARGES[step][0](session, job_id, ctx, token=self.request.id)
                claim, dues = (
                    (claimed, []) if isinstance(claimed, payments.Claim) else (None, claimed)
                )
            else:
                dues = run_step(session, step, job_id, ctx)
            fired = timed and _deadline_moved(session, job_id, timer)
            if not on_clock:
                send_after_commit(session, [d for d in dues if d.at is not None])
        if claim is not None:
            dues = self._pay(step, claim)
        if fired and timer is not None and not on_clock:
            late = (ctx.now - timer).total_seconds()
            metrics.TIMER_LATENESS.labels(step=step.value).observe(late)
        log.info(
            "step done",
            extra={"job_id": job_id, "task": step_task_name(step), "due": len(dues)},
        )
        return [d for d in dues if d.at is None]


def _context(session: Session, job_id: int) -> tuple[StepContext, bool]:
    """The context a step of ``job_id`` runs in, and whether the job is on a test clock: its
    clock's time then, else the database's (asked only with GIGCO_TEST_CLOCKS=1)."""
    rt = runtime()
    clocked = test_clocks.job_time(session, job_id) if rt.settings.test_clocks else None
    now = clocked if clocked is not None else clock.now()
    return StepContext(settings=rt.settings, gateway=rt.gateway, now=now), clocked is not None


# --- timer lateness, read around a step under the step's own row lock -------------------


def _due_deadline(session: Session, job_id: int, now: dt.datetime) -> dt.datetime | None:
    """The job's deadline if it is due at ``now``, row-locked; None when nothing is due.

    The lock (the step that fires the timer takes the same one, without a second round
    trip) makes a duplicate delivery of the same timer wait, then see the deadline already
    moved, so it is counted once.
    """
    job = lock_job(session, job_id)
    if job is None or job.timer_at is None or job.timer_at > now:
        return None
    return job.timer_at


def _deadline_moved(session: Session, job_id: int, due: dt.datetime | None) -> bool:
    """True when the step just run consumed deadline ``due`` (the job's timer moved on).

    The job is still locked and loaded, and every change to it goes through the session,
    so the loaded row is current.
    """
    if due is None:
        return False
    job = session.get(Job, job_id)
    return job is not None and job.timer_at != due
