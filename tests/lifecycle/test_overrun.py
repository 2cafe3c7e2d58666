"""Work that runs long: in_progress's deadline, over HTTP with the live worker and beat
(GIGCO_OVERRUN_FACTOR=1 in the tests' environment)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import Job
from tests.harness.console import Ops, table
from tests.harness.http import Api
from tests.harness.polling import wait_for


def at(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def started(api: Api, sessions: sessionmaker[Session], ends_in: float) -> tuple[int, Any, Any]:
    """A job taken and started whose expected end (start + 2 h x 1) is ``ends_in`` seconds
    away: it was booked two hours before that, as if the work began on time."""
    consumer, worker = api.consumer(), api.worker()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    api.signal(job_id, "offer/accept", consumer)
    wait_for(
        lambda: api.client.get("/v1/opportunities", headers=worker["headers"]).json,
        what="an opportunity",
    )
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2) + dt.timedelta(seconds=ends_in)
    with sessions.begin() as s:
        s.execute(sa.update(Job).where(Job.id == job_id).values(scheduled_start=start))
    assert api.signal(job_id, "start", worker).status_code == 200
    return job_id, consumer, worker


def test_work_past_its_expected_end_is_flagged_once_to_the_consumer_and_operators(
    api: Api, ops: Ops, sessions: sessionmaker[Session]
) -> None:
    job_id, consumer, worker = started(api, sessions, ends_in=2)
    flagged = wait_for(
        lambda: next((e for e in api.events(job_id) if e["type"] == "overrun_flagged"), None),
        timeout=15,
        what="the overrun",
    )
    job = api.job(job_id)
    expected_end = at(job["scheduled_start"]) + dt.timedelta(hours=2)
    assert at(flagged["data"]["expected_end"]) == expected_end
    lateness = at(flagged["created_at"]) - expected_end
    assert dt.timedelta(0) <= lateness < dt.timedelta(seconds=1), lateness  # never early
    # Nothing else changes: still in progress, the worker finishes as usual.
    assert job["status"] == "in_progress"
    notes = api.client.get("/v1/notifications", headers=consumer["headers"]).json
    assert [n["data"] for n in notes if n["kind"] == "overrun"] == [
        {"expected_end": flagged["data"]["expected_end"]}
    ]
    # Operators see it with the overdue work.
    rows = table(ops.page("/ops/").text, "attention-jobs")
    assert any(r[0] == f"#{job_id}" and r[3] == "work overrunning" for r in rows), rows
    assert api.signal(job_id, "complete", worker).status_code == 200
    api.wait_status(job_id, "review_pending")
    rows = table(ops.page("/ops/").text, "attention-jobs")
    assert not any(r[0] == f"#{job_id}" for r in rows)
    assert [e["type"] for e in api.events(job_id)].count("overrun_flagged") == 1  # once
