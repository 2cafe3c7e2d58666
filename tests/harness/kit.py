"""Jobs driven to a known state on a test clock of ``gigco.testing``'s in-process GigCo (the
``gigco`` fixture): where a test's point is what a deadline does, not when real time fires
it, the clock is advanced past the deadline in milliseconds instead of waiting for it."""

from __future__ import annotations

from typing import Any

from gigco.testing import GigCo, TestClockHandle
from tests.harness.env import ADMIN_TOKEN, TIMERS

# The operator as a party of the kit's calls. A module's ``gigco_settings`` fixture gives the
# kit's GigCo ``KIT_SETTINGS``: the run's operator token and the payment budget of the
# suite's live processes (TIMERS in tests/harness/env.py); every other setting its default.
OPERATOR = {"token": ADMIN_TOKEN}
KIT_SETTINGS = {
    "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
    "GIGCO_PAYMENT_MAX_ATTEMPTS": TIMERS["GIGCO_PAYMENT_MAX_ATTEMPTS"],
}


def worked_on_clock(
    gigco: GigCo, consumer: dict[str, Any], worker: dict[str, Any], **job: Any
) -> tuple[int, TestClockHandle]:
    """A job of ``consumer``'s on a new test clock of theirs, taken, started and completed
    by ``worker``; with the clock."""
    clock = gigco.test_clock(consumer)
    job_id = gigco.post_job(consumer, test_clock=clock.id, **job)
    gigco.act(consumer, job_id, "offer/accept")
    gigco.act(worker, job_id, "opportunity/accept")
    gigco.act(worker, job_id, "start")
    gigco.act(worker, job_id, "complete")
    return job_id, clock


def refused(gigco: GigCo, job_id: int) -> int:
    """How many payment attempts of the job were refused."""
    return sum(e["type"] == "payment_attempt_refused" for e in gigco.events(OPERATOR, job_id))


def failed_payment_on_clock(gigco: GigCo, consumer: dict[str, Any]) -> tuple[int, TestClockHandle]:
    """A job of ``consumer``'s (whose card is always declined) left in payment_failed: its
    first attempt runs at once, its retries when the clock is advanced past their backoff."""
    job_id, clock = worked_on_clock(gigco, consumer, gigco.worker())
    assert (gigco.job(consumer, job_id)["status"], refused(gigco, job_id)) == ("completed", 1)
    clock.advance(hours=1)
    assert gigco.job(consumer, job_id)["status"] == "payment_failed"
    return job_id, clock
