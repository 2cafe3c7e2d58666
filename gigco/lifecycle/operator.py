"""What the operator does to jobs from the console: cancel, re-kick a step, retry a payment,
move a job to the newest lifecycle policy.

Each takes a reason, goes through the same guarded transition (or event) as every other
caller, and leaves an ``operator`` event in the job's history carrying that reason. One
job per call: the console commits each job on its own, so one refusal never undoes the
others of a bulk action.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from gigco.lifecycle.actions import Outcome, cancel_job, retry_payment, upgrade_policy
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.errors import Conflict, Invalid, NotFound
from gigco.lifecycle.history import record_event
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.principals import OPERATOR, Principal
from gigco.lifecycle.schedule import STEP_FOR_STATUS, Next
from gigco.lifecycle.transitions import Due, set_next
from gigco.models import Role

OPERATOR_PRINCIPAL = Principal(Role.OPERATOR)
REASON_MAX = 500

OperatorAction = Callable[[Session, int, StepContext, str], Outcome]


def clean_reason(reason: str | None) -> str:
    """The reason stripped; Invalid when it is empty or too long."""
    text = " ".join((reason or "").split())
    if not text:
        raise Invalid("Give a reason.", errors={"reason": ["Required."]})
    if len(text) > REASON_MAX:
        raise Invalid(
            f"A reason has at most {REASON_MAX} characters.",
            errors={"reason": [f"At most {REASON_MAX} characters."]},
        )
    return text


def cancel(session: Session, job_id: int, ctx: StepContext, reason: str) -> Outcome:
    """→ cancelled where the lifecycle allows it; the parties are told the operator did it."""
    return cancel_job(
        session,
        job_id,
        actor=OPERATOR,
        by="GigCo support",
        ctx=ctx,
        data={"reason": clean_reason(reason)},
    )


def rekick(session: Session, job_id: int, ctx: StepContext, reason: str) -> Outcome:
    """Send the job's pending system step again (at once, or at its deadline if not yet due).

    A step re-reads the job and does nothing when the world has moved on, so a second send
    is harmless; a job whose next move is a person's (or that has ended) is a Conflict.
    """
    text = clean_reason(reason)
    job = lock_job(session, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found.")
    step = STEP_FOR_STATUS.get(job.status)
    if step is None or (job.step_due_at is None and job.timer_at is None):
        raise Conflict(
            f"Job {job_id} is {job.status.value}; no system step is pending to re-kick.",
            current_status=job.status.value,
        )
    if job.step_due_at is not None:
        # Due now from now: the grace restarts, as the sweep does for a stuck step.
        (due,) = set_next(job, Next.now(), ctx.now)
    elif job.timer_at is not None and job.timer_at <= ctx.now:
        due = Due(step, job_id)
    else:
        due = Due(step, job_id, job.timer_at)
    record_event(
        session,
        job_id,
        "operator_rekick",
        actor=OPERATOR,
        now=ctx.now,
        data={"reason": text, "step": step.value, "due_at": (due.at or ctx.now).isoformat()},
    )
    session.flush()
    return job, [due]


def retry(session: Session, job_id: int, ctx: StepContext, reason: str) -> Outcome:
    """payment_failed → completed: charging starts again."""
    return retry_payment(session, job_id, OPERATOR_PRINCIPAL, ctx, reason=clean_reason(reason))


def upgrade(session: Session, job_id: int, ctx: StepContext, reason: str) -> Outcome:
    """Move the job to the newest lifecycle policy (later deadlines follow it)."""
    return upgrade_policy(session, job_id, OPERATOR_PRINCIPAL, ctx, reason=clean_reason(reason))


# The console's bulk actions: name → (label, function).
ACTIONS: dict[str, tuple[str, OperatorAction]] = {
    "retry_payment": ("Retry payment", retry),
    "upgrade_policy": ("Move to the newest policy", upgrade),
    "rekick": ("Re-kick the pending step", rekick),
    "cancel": ("Cancel", cancel),
}
