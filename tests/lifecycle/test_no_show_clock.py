"""The no-show is an ordinary deadline: on a test clock it fires on the clock's advance, at
scheduled_start + the start grace (the default, 30 minutes), never before; a job on a policy
without a start grace waits for its worker. Runs on the ``gigco`` fixture (gigco.testing)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gigco.models import Job
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


def test_a_job_on_a_policy_without_a_start_grace_waits_for_its_worker(gigco: GigCo) -> None:
    old_place, new_place = {"lat": 20.0, "lng": 20.0}, {"lat": 21.0, "lng": 20.0}
    consumer = gigco.consumer()
    old_worker, new_worker = gigco.worker(location=old_place), gigco.worker(location=new_place)
    clock = gigco.test_clock(consumer)
    start = clock.now + dt.timedelta(hours=1)
    when = {"scheduled_start": start.isoformat(), "test_clock": clock.id}
    old = gigco.post_job(consumer, location=old_place, **when)
    engine = sa.create_engine(gigco.settings.database_url)
    with engine.begin() as conn:  # created under version 1: before no-shows
        conn.execute(sa.update(Job).where(Job.id == old).values(policy_version=1))
    engine.dispose()
    new = gigco.post_job(consumer, location=new_place, **when)
    for job, worker in ((old, old_worker), (new, new_worker)):
        gigco.act(consumer, job, "offer/accept")
        gigco.act(worker, job, "opportunity/accept")
        assert gigco.job(consumer, job)["status"] == "scheduled"

    grace = dt.timedelta(seconds=gigco.settings.start_grace_seconds)
    clock.advance(to=start + grace - dt.timedelta(milliseconds=1))
    assert gigco.job(consumer, new)["status"] == "scheduled"  # never early
    clock.advance(to=start + grace + dt.timedelta(hours=1))
    assert "worker_no_show" in [e["type"] for e in gigco.events(consumer, new)]
    assert gigco.job(consumer, old)["status"] == "scheduled"
    assert "worker_no_show" not in [e["type"] for e in gigco.events(consumer, old)]
    gigco.act(old_worker, old, "start")
    assert gigco.job(consumer, old)["status"] == "in_progress"
