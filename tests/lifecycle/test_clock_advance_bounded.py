"""Advancing a clock with many due deadlines is bounded work per task (GIGCO_SWEEP_BATCH
steps), like a sweep's backlog; the rest follow in the tasks it queues. Runs on the
``gigco`` fixture (gigco.testing), whose worker runs one queued task at a time when asked."""

from __future__ import annotations

import datetime as dt

import pytest

from gigco.testing import GigCo


@pytest.fixture
def gigco_settings() -> dict[str, str]:
    return {"GIGCO_SWEEP_BATCH": "2"}


def test_an_advance_runs_at_most_a_batch_of_steps_per_task(gigco: GigCo) -> None:
    consumer = gigco.consumer()
    clock = gigco.test_clock(consumer)
    jobs = [gigco.post_job(consumer, test_clock=clock.id) for _ in range(5)]
    assert {gigco.job(consumer, j)["status"] for j in jobs} == {"offered"}

    body = {"frozen_time": (clock.now + dt.timedelta(days=2)).isoformat()}
    gigco.call("POST", f"/v1/test_clocks/{clock.id}/advance", consumer, body, 202)
    assert gigco.run(limit=1) == 1  # one advance task: two offers expire, the rest wait
    statuses = [gigco.job(consumer, j)["status"] for j in jobs]
    assert statuses.count("expired") == 2, statuses
    assert gigco.call("GET", f"/v1/test_clocks/{clock.id}", consumer)["status"] == "advancing"

    gigco.run()  # the tasks the advance queued for the rest finish it
    assert {gigco.job(consumer, j)["status"] for j in jobs} == {"expired"}
    assert gigco.call("GET", f"/v1/test_clocks/{clock.id}", consumer)["status"] == "ready"
