"""The real sweeps never see a test clock's jobs, however overdue on real time."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from sqlalchemy.orm import Session

from gigco import clock
from gigco.lifecycle.timers import due_timers, stuck_steps
from gigco.models import TestClock
from tests import factories as f
from tests.harness.bodies import job_body
from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import Api


def test_real_sweeps_claim_real_jobs_and_never_a_clocks(session: Session) -> None:
    now = clock.now()
    past = now - dt.timedelta(days=2)
    test_clock = TestClock(owner="consumer:1", frozen_time=past - dt.timedelta(days=1))
    session.add(test_clock)
    session.flush()
    on_clock = {"test_clock_id": test_clock.id}
    real = f.job(session, status=f.JobStatus.OFFERED, offer_expires_at=past, timer_at=past)
    clocked = f.job(
        session, status=f.JobStatus.OFFERED, offer_expires_at=past, timer_at=past, **on_clock
    )
    stuck_real = f.job(session, status=f.JobStatus.DRAFT, step_due_at=past)
    f.job(session, status=f.JobStatus.DRAFT, step_due_at=past, **on_clock)

    def sweep(at: dt.datetime) -> set[int]:
        timers = due_timers(session, now=at, horizon_seconds=45, grace_seconds=60, batch=100)
        stuck = stuck_steps(session, now=at, grace_seconds=60, batch=100)
        return {d.job_id for d in [*timers, *stuck]}

    assert sweep(now) == {real.id, stuck_real.id}
    # Nor later, when the real ones are re-sent as possibly lost.
    assert clocked.id not in sweep(now + dt.timedelta(hours=1))


def test_with_test_clocks_off_their_paths_are_404_and_a_jobs_clock_422(isolated_app: Flask) -> None:
    api = Api(isolated_app.test_client(), ADMIN_TOKEN)
    consumer = api.consumer()
    body = {"frozen_time": clock.now().isoformat()}
    assert (
        api.client.post("/v1/test_clocks", json=body, headers=consumer["headers"]).status_code
        == 404
    )
    assert api.client.get("/v1/test_clocks", headers=consumer["headers"]).status_code == 404
    r = api.client.post("/v1/jobs", json=job_body(test_clock=1), headers=consumer["headers"])
    assert r.status_code == 422 and "GIGCO_TEST_CLOCKS" in r.json["errors"]["test_clock"][0]
    assert "test_clocks" not in api.client.get("/healthz").json
