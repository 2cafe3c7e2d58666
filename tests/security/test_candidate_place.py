"""A worker who has not taken a job learns only roughly where it is (issue 21, item 2).

Over HTTP to gunicorn, with the live worker matching and delivering webhooks to a real
receiver: a worker holding an opportunity reads the job, its history, their notifications,
the feed, the opportunity listing and their webhook messages, and finds the job's ~1 km
approximate place everywhere, the same on every read, and its exact coordinates nowhere;
once they accept, they see the exact place.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import Job, Opportunity, OpportunityStatus
from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.polling import wait_for
from tests.harness.webhooks import Receiver, receiving, verified

# A place no other test's worker serves, given to more decimals than any approximation.
EXACT = {"lat": -33.867123, "lng": 151.207345}
WORKER_AT = {"lat": -33.80, "lng": 151.10}  # ~12 km away, within a 25 km radius


def km(a: dict[str, float], b: dict[str, float]) -> float:
    """Distance between two nearby places (equirectangular: plenty at a few kilometres)."""
    dy = (a["lat"] - b["lat"]) * 111.195
    dx = (a["lng"] - b["lng"]) * 111.195 * math.cos(math.radians((a["lat"] + b["lat"]) / 2))
    return math.hypot(dx, dy)


class Http:
    """JSON over HTTP to the API under gunicorn, on one pooled connection (requests)."""

    def __init__(self, base_url: str, session: requests.Session):
        self.base_url, self.session = base_url, session

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=20, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=20, **kw)


@pytest.fixture
def http(base_url: str, committed: None) -> Iterator[Http]:
    with requests.Session() as session:
        yield Http(base_url, session)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


def _sign_up(http: Http, path: str, body: dict[str, Any]) -> dict[str, str]:
    r = http.post(path, json=body)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _hold_the_opportunity(sessions: sessionmaker[Session], job_id: int) -> None:
    """Move the pending opportunity an hour out as soon as it exists (the tests' is 3 s): a
    timer already armed for the old deadline finds the new one and does nothing."""

    def pending(session: Session) -> Opportunity | None:
        return session.scalar(
            sa.select(Opportunity).where(
                Opportunity.job_id == job_id, Opportunity.status == OpportunityStatus.PENDING
            )
        )

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with sessions() as session, session.begin():
        opp = wait_for(lambda: pending(session), timeout=10, what="the opportunity")
        session.execute(
            sa.update(Opportunity)
            .where(Opportunity.id == opp.id, Opportunity.status == OpportunityStatus.PENDING)
            .values(expires_at=later)
        )
        session.execute(
            sa.update(Job).where(Job.id == job_id).values(timer_at=later, timer_armed_at=None)
        )


def _locations(value: Any) -> list[dict[str, Any]]:
    """Every ``location`` object anywhere in a JSON value."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if isinstance(value.get("location"), dict):
            found.append(value["location"])
        for item in value.values():
            found += _locations(item)
    elif isinstance(value, list):
        for item in value:
            found += _locations(item)
    return found


def _messages(receiver: Receiver, secret: str, job_id: int) -> list[dict[str, Any]]:
    got = [verified(r, secret) for r in receiver.at("/worker") if 200 <= r.answered < 300]
    return [m for m in got if m["type"] != "ping" and m["data"]["job_id"] == job_id]


def test_a_candidate_sees_an_approximate_place_until_they_accept(
    http: Http, receiver: Receiver, sessions: sessionmaker[Session]
) -> None:
    consumer = _sign_up(http, "/v1/consumers", consumer_body())
    worker = _sign_up(http, "/v1/workers", worker_body(location=WORKER_AT))
    r = http.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url("/worker")},
        headers=worker,
    )
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    r = http.post("/v1/jobs", json=job_body(location=EXACT), headers=consumer)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    wait_for(
        lambda: http.get(f"/v1/jobs/{job_id}", headers=consumer).json()["status"] == "offered",
        what="the offer",
    )
    assert http.post(f"/v1/jobs/{job_id}/offer/accept", headers=consumer).status_code == 200
    _hold_the_opportunity(sessions, job_id)

    # Everything the candidate can read about the job, twice over.
    reads = [
        http.get(path, headers=worker)
        for path in (
            f"/v1/jobs/{job_id}",
            f"/v1/jobs/{job_id}/events",
            "/v1/opportunities",
            "/v1/notifications",
            "/v1/notifications/feed?after=0-0",
        )
        * 2
    ]
    assert all(r.status_code == 200 for r in reads), [r.text for r in reads]
    offered = wait_for(
        lambda: [
            m for m in _messages(receiver, secret, job_id) if m["type"] == "job.opportunity_offered"
        ],
        timeout=20,
        what="the worker's job.opportunity_offered message",
    )
    shown = [r.json() for r in reads] + offered
    text = json.dumps(shown)
    assert str(EXACT["lat"]) not in text and str(EXACT["lng"]) not in text
    places = _locations(shown)
    assert len(places) == 5  # the job twice, the listing twice, the webhook message
    first = places[0]
    assert all(p == first for p in places), places  # stable: the same on every read
    assert first["approximate"] is True
    assert 0 < km(first, EXACT) <= 1.0, first
    (listed, *_) = reads[2].json()
    # Their distance is to the approximate place, not to the job's door.
    assert listed["distance_km"] == pytest.approx(km(WORKER_AT, first), abs=0.15)

    assert http.post(f"/v1/jobs/{job_id}/opportunity/accept", headers=worker).status_code == 200
    assert http.get(f"/v1/jobs/{job_id}", headers=worker).json()["location"] == EXACT
    assigned = wait_for(
        lambda: [
            m for m in _messages(receiver, secret, job_id) if m["type"] == "job.worker_assigned"
        ],
        timeout=20,
        what="the worker's job.worker_assigned message",
    )
    assert assigned[0]["data"]["job"]["location"] == EXACT
    assert http.get(f"/v1/jobs/{job_id}", headers=consumer).json()["location"] == EXACT
