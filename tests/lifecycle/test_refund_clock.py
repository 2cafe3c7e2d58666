"""A dispute of a job on a test clock runs on the clock's time, as every step of the job does:
opened within the review window as the clock sees it, its refund taken at once when the
operator resolves it (over the API or in the console) and recorded at the clock's time,
whether the clock stands ten days ahead of real time or ten days behind (further than the
seven-day window). Runs on the ``gigco`` fixture."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gigco import clock
from gigco.lifecycle.disputes import due_refunds
from gigco.lifecycle.principals import consumer_actor
from gigco.models import Dispute, JobStatus, RefundStatus, TestClock
from gigco.testing import GigCo
from tests import factories as f
from tests.harness.console import Ops
from tests.harness.kit import KIT_SETTINGS, OPERATOR


@pytest.fixture
def gigco_settings() -> dict[str, str]:
    """The kit's GigCo with the run's operator token (the operator resolves the dispute)."""
    return KIT_SETTINGS


def _event(gigco: GigCo, job_id: int, kind: str) -> dict[str, Any] | None:
    return next((e for e in gigco.events(OPERATOR, job_id) if e["type"] == kind), None)


@pytest.mark.parametrize("by", ["api", "console"])
@pytest.mark.parametrize(
    "ahead", [dt.timedelta(days=10), dt.timedelta(days=-10)], ids=["ahead", "behind"]
)
def test_a_refund_on_a_clock_is_taken_at_once_and_recorded_at_the_clock_s_time(
    gigco: GigCo, ahead: dt.timedelta, by: str
) -> None:
    consumer, worker = gigco.consumer(), gigco.worker()
    frozen = dt.datetime.now(dt.UTC).replace(microsecond=0) + ahead
    on = gigco.test_clock(consumer, frozen_time=frozen)
    start = (frozen + dt.timedelta(days=2)).isoformat()
    job_id = gigco.post_job(consumer, test_clock=on.id, scheduled_start=start)
    for party, action in ((consumer, "offer/accept"), (worker, "opportunity/accept")):
        gigco.act(party, job_id, action)
    for action in ("start", "complete"):
        gigco.act(worker, job_id, action)
    assert gigco.job(consumer, job_id)["status"] == "review_pending"
    at = on.advance(hours=1)  # within the review window, still days away from real time

    gigco.call("POST", f"/v1/jobs/{job_id}/dispute", consumer, {"reason": "It leaks."}, 201)
    price = gigco.job(consumer, job_id)["price_cents"]
    if by == "api":
        resolution = {"refund_cents": price // 2, "note": "Half the work."}
        gigco.call("POST", f"/v1/jobs/{job_id}/dispute/resolve", OPERATOR, resolution)
    else:
        ops = Ops(gigco.client)
        assert ops.login().status_code == 303
        page, action = f"/ops/jobs/{job_id}", f"/ops/jobs/{job_id}/dispute/resolve"
        done = ops.submit(page, action, refund_cents=str(price // 2), reason="Half the work.")
        assert done.status_code == 303, done.text
    gigco.run()

    resolved, refunded = (_event(gigco, job_id, k) for k in ("dispute_resolved", "refunded"))
    assert resolved and refunded, [e["type"] for e in gigco.events(OPERATOR, job_id)]
    assert refunded["data"]["refund_cents"] == price // 2
    for event in (resolved, refunded):
        assert dt.datetime.fromisoformat(event["created_at"]) == at, event
    dispute = gigco.call("GET", f"/v1/jobs/{job_id}/dispute", consumer)
    assert (dispute["refund_cents"], dispute["refund_status"]) == (price // 2, "succeeded")


def test_the_sweep_finds_a_clock_s_refund_due_by_its_clock_and_a_real_one_by_real_time(
    either_session: Session,
) -> None:
    """A pending refund whose run was lost is sent again by the sweep once it is due: for a
    job on a test clock, once its clock has passed the due time, whatever real time says."""
    s, now = either_session, clock.now()
    owner = f.consumer(s)

    def pending(due_in: dt.timedelta, clock_at: dt.timedelta | None = None) -> int:
        on = None
        if clock_at is not None:
            on = TestClock(owner=consumer_actor(owner.id), frozen_time=now + clock_at)
            s.add(on)
            s.flush()
        job = f.job(s, owner, status=JobStatus.PAID, test_clock_id=on and on.id)
        dispute = Dispute(
            job_id=job.id,
            reason="r",
            refund_cents=100,
            refund_status=RefundStatus.PENDING,
            refund_due_at=now + due_in,
        )
        s.add(dispute)
        s.flush()
        return dispute.id

    real_due = pending(-dt.timedelta(seconds=1))
    pending(dt.timedelta(hours=1))  # real time, not yet
    ahead_due = pending(dt.timedelta(days=1), clock_at=dt.timedelta(days=10))
    pending(-dt.timedelta(days=1), clock_at=-dt.timedelta(days=10))  # its clock: not yet
    assert due_refunds(s, now, batch=10) == [real_due, ahead_due]
    assert due_refunds(s, now, batch=1) == [real_due]
