"""The no-show is an ordinary deadline: on a test clock it fires on the clock's advance, at
scheduled_start + the start grace (the default, 30 minutes), never before. Runs on the
``gigco`` fixture (gigco.testing)."""

from __future__ import annotations

import datetime as dt

from gigco.testing import GigCo


def test_a_clock_s_advance_past_the_start_grace_makes_the_no_show(gigco: GigCo) -> None:
    consumer, absent = gigco.consumer(), gigco.worker()
    clock = gigco.test_clock(consumer)
    job = gigco.post_job(consumer, test_clock=clock.id)
    gigco.act(consumer, job, "offer/accept")
    gigco.act(absent, job, "opportunity/accept")
    start = dt.datetime.fromisoformat(gigco.job(consumer, job)["scheduled_start"])
    assert gigco.job(consumer, job)["status"] == "scheduled"
    other = gigco.worker()  # signed up late: matching asks them only after the no-show

    clock.advance(to=start + dt.timedelta(minutes=29, seconds=59))
    assert gigco.job(consumer, job)["status"] == "scheduled"  # never early
    clock.advance(to=start + dt.timedelta(minutes=30))
    events = gigco.events(consumer, job)
    no_show = next(e for e in events if e["type"] == "worker_no_show")
    assert no_show["data"] == {"late_by_seconds": 0.0}  # at its deadline, on the clock's time
    assert gigco.job(consumer, job)["status"] == "accepted"
    offered = gigco.call("GET", "/v1/opportunities", other)
    assert [o["job_id"] for o in offered] == [job]
    assert gigco.call("GET", "/v1/opportunities", absent) == []
