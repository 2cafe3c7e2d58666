"""A worker who does not come: the scheduled status's deadline fires on the real clock, over HTTP
with the live worker and beat (GIGCO_START_GRACE_SECONDS=1 in the tests' environment). What a
policy without a start grace does is on a test clock (test_no_show_clock.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gigco.config import Settings
from tests.harness.console import Ops, table
from tests.harness.http import Api
from tests.harness.polling import wait_for

FARTHER = {"lat": 52.60, "lng": 13.41}


def at(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def opportunities(api: Api, worker: dict[str, Any]) -> list[dict[str, Any]]:
    return api.client.get("/v1/opportunities", headers=worker["headers"]).json


def soon_scheduled(
    api: Api, consumer: dict[str, Any], worker: dict[str, Any], place: dict[str, float]
) -> int:
    """A job at ``place`` starting in three seconds, taken by ``worker`` and scheduled."""
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    job_id = api.post_job(consumer, start=start, location=place)["id"]
    api.wait_status(job_id, "offered")
    api.signal(job_id, "offer/accept", consumer)
    wait_for(lambda: opportunities(api, worker), what="the worker's opportunity")
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    return job_id


def test_a_worker_who_does_not_come_is_a_no_show_and_the_job_is_matched_again(
    api: Api, ops: Ops, settings: Settings
) -> None:
    place = {"lat": 52.53, "lng": 13.41}
    consumer, absent = api.consumer(), api.worker(location=place)
    other = api.worker(location=FARTHER)
    job_id = soon_scheduled(api, consumer, absent, place)
    deadline = at(api.job(job_id)["scheduled_start"]) + dt.timedelta(
        seconds=settings.start_grace_seconds
    )
    no_show = wait_for(
        lambda: next((e for e in api.events(job_id) if e["type"] == "worker_no_show"), None),
        timeout=15,
        what="the no-show",
    )
    # An ordinary deadline: never early, within a second when healthy.
    lateness = at(no_show["created_at"]) - deadline
    assert dt.timedelta(0) <= lateness < dt.timedelta(seconds=1), lateness
    assert (no_show["from_status"], no_show["to_status"]) == ("scheduled", "accepted")
    assert no_show["data"]["worker_id"] == absent["id"]
    # Matched again at once, passing the absent worker by.
    wait_for(lambda: opportunities(api, other), what="the opportunity to pass on")
    assert api.client.get(f"/v1/jobs/{job_id}", headers=absent["headers"]).status_code == 404
    notes = api.client.get("/v1/notifications", headers=consumer["headers"]).json
    assert any(n["kind"] == "no_show" for n in notes)
    seen = api.client.get(f"/v1/jobs/{job_id}/events", headers=consumer["headers"]).json
    mine = next(e for e in seen if e["type"] == "worker_no_show")
    assert set(mine["data"]) == {"late_by_seconds"}  # not who: the operator's to know
    # Counted against the worker, shown to operators.
    rows = table(ops.page(f"/ops/jobs/{job_id}").text, "opportunities")
    row = next(r for r in rows if r[0].startswith(f"#{absent['id']} "))
    assert row[1:3] == ["0", "1"]
