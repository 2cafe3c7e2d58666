"""What is due next on a job: the step each status waits on, and when it runs.

A job's step follows from its status (``STEP_FOR_STATUS``); its deadline columns say only
when: ``step_due_at`` marks a step due now, ``timer_at`` a step due at a deadline (an
offer's or an opportunity's expiry, the next matching round, a charge's lease or a payment
retry's backoff — the price's, or a cancelled job's late-cancellation fee's — a scheduled
job's start grace (the no-show), work's overrun, the review deadline). A ``Next`` value is
the one way to write them: through ``transition`` and ``set_next``
(``gigco.lifecycle.transitions``), and the re-kick of a stalled step (the stuck-step sweep,
the operator's re-kick) is ``Next.now()`` again. ``offer_expires_at`` and
``review_deadline`` are facts the API shows, not swept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from gigco.models import Job
from gigco.models import JobStatus as S


class Step(StrEnum):
    """A system step; each value is also the name of the function that runs it."""

    PRICE = "price_job"
    SEND_OFFER = "send_offer"
    EXPIRE_OFFER = "expire_offer"
    MATCH = "match_job"
    SCHEDULE = "schedule_job"
    NO_SHOW = "mark_no_show"
    OVERRUN = "flag_overrun"
    PAY = "process_payment"
    REQUEST_REVIEWS = "request_reviews"
    CLOSE = "close_job"
    LATE_CANCEL_FEE = "charge_late_cancel_fee"


# The step that moves a job on from each state in which the system (not a person) acts next.
STEP_FOR_STATUS: dict[S, Step] = {
    S.DRAFT: Step.PRICE,
    S.PRICED: Step.SEND_OFFER,
    S.OFFERED: Step.EXPIRE_OFFER,
    S.ACCEPTED: Step.MATCH,
    S.WORKER_ASSIGNED: Step.SCHEDULE,
    S.SCHEDULED: Step.NO_SHOW,  # at scheduled_start + the start grace, if not started
    S.IN_PROGRESS: Step.OVERRUN,  # at scheduled_start + estimated hours x the overrun factor
    S.COMPLETED: Step.PAY,
    S.PAID: Step.REQUEST_REVIEWS,
    S.REVIEW_PENDING: Step.CLOSE,
    # Only a late cancel makes it due (gigco.lifecycle.cancel_fees); other cancels end here.
    S.CANCELLED: Step.LATE_CANCEL_FEE,
}

# The steps a deadline (jobs.timer_at) can wake; the others only follow a commit.
DEADLINE_STEPS = frozenset(
    {
        *(Step.EXPIRE_OFFER, Step.MATCH, Step.NO_SHOW, Step.OVERRUN, Step.PAY, Step.CLOSE),
        Step.LATE_CANCEL_FEE,
    }
)


@dataclass(frozen=True)
class Next:
    """When the system acts on a job next: now, at a deadline, or not until a person acts."""

    due_now: bool = False
    deadline: dt.datetime | None = None

    @classmethod
    def now(cls) -> Next:
        """The status's step is due at once (``step_due_at``, re-kicked if it stalls)."""
        return cls(due_now=True)

    @classmethod
    def at(cls, when: dt.datetime) -> Next:
        """The status's step is due at ``when`` (``timer_at``)."""
        return cls(deadline=when)

    @classmethod
    def nothing(cls) -> Next:
        """Nothing is due; the job waits on a person or has ended."""
        return cls()

    @property
    def is_due(self) -> bool:
        """True when some step is due, now or later."""
        return self.due_now or self.deadline is not None

    def columns(self, now: dt.datetime) -> dict[str, dt.datetime | None]:
        """The job's deadline columns for this value, written at ``now``."""
        return {
            "step_due_at": now if self.due_now else None,
            "timer_at": self.deadline,
            "timer_armed_at": None,  # a new deadline (or none) is not yet sent by a sweep
        }


def expected_end(job: Job, overrun_factor: float | None) -> dt.datetime | None:
    """When work on ``job`` is overrunning: ``scheduled_start`` + ``estimated_hours`` × the
    policy's overrun factor (None: the policy has none)."""
    if overrun_factor is None:
        return None
    hours = float(job.estimated_hours) * overrun_factor
    return job.scheduled_start + dt.timedelta(hours=hours)
