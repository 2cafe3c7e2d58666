"""The allowed moves between job states, and the system step each state waits on."""

from __future__ import annotations

from enum import StrEnum

from gigco.models import JobStatus as S


class Step(StrEnum):
    """A system step; each value is also the name of the Celery task that runs it."""

    PRICE = "price_job"
    SEND_OFFER = "send_offer"
    EXPIRE_OFFER = "expire_offer"
    MATCH = "match_job"
    SCHEDULE = "schedule_job"
    PAY = "process_payment"
    REQUEST_REVIEWS = "request_reviews"
    CLOSE = "close_job"


TRANSITIONS: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.PRICED, S.CANCELLED}),
    S.PRICED: frozenset({S.OFFERED, S.CANCELLED}),
    S.OFFERED: frozenset({S.ACCEPTED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.WORKER_ASSIGNED, S.NO_WORKER, S.CANCELLED}),
    S.WORKER_ASSIGNED: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset({S.PAID, S.PAYMENT_FAILED}),
    S.PAYMENT_FAILED: frozenset({S.COMPLETED}),
    S.PAID: frozenset({S.REVIEW_PENDING}),
    S.REVIEW_PENDING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NO_WORKER: frozenset(),
}

TERMINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)

CANCELLABLE = frozenset(status for status, moves in TRANSITIONS.items() if S.CANCELLED in moves)

# The step that moves a job on from each state in which the system (not a person) acts next.
STEP_FOR_STATUS: dict[S, Step] = {
    S.DRAFT: Step.PRICE,
    S.PRICED: Step.SEND_OFFER,
    S.OFFERED: Step.EXPIRE_OFFER,
    S.ACCEPTED: Step.MATCH,
    S.WORKER_ASSIGNED: Step.SCHEDULE,
    S.COMPLETED: Step.PAY,
    S.PAID: Step.REQUEST_REVIEWS,
    S.REVIEW_PENDING: Step.CLOSE,
}


# The steps a deadline (jobs.timer_at) can wake; the others only follow a commit.
DEADLINE_STEPS = frozenset({Step.EXPIRE_OFFER, Step.MATCH, Step.PAY, Step.CLOSE})


def sources_of(to: S) -> frozenset[S]:
    """Every state from which a job may move to ``to``."""
    return frozenset(src for src, moves in TRANSITIONS.items() if to in moves)
