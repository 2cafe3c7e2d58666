"""A job keeps the policy it was created under across an environment change and a restart.

The test owns its whole stack (a fresh database, a fresh RabbitMQ vhost, its own gunicorn
and worker), so that the processes can be stopped and started again with another
environment while the run's shared worker goes on undisturbed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import fresh_vhost, rabbitmq_url
from tests.harness import database
from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.env import ADMIN_TOKEN, live_env, server_url
from tests.harness.http import Answer, Client, Journal
from tests.harness.polling import wait_for
from tests.harness.servers import live_server, start_worker, stop_worker

# Before the change: a one-hour offer and a half-hour opportunity; after it, two hours and a
# minute. No deadline fires during the test.
BEFORE = {"GIGCO_OFFER_TTL_SECONDS": "3600", "GIGCO_OPPORTUNITY_TTL_SECONDS": "1800"}
AFTER = {"GIGCO_OFFER_TTL_SECONDS": "7200", "GIGCO_OPPORTUNITY_TTL_SECONDS": "60"}


@pytest.fixture
def own_stack() -> Iterator[tuple[str, str]]:
    """A fresh migrated database and a fresh RabbitMQ vhost: (database URL, broker URL)."""
    name = f"gigco_pin_{uuid.uuid4().hex[:8]}"
    with fresh_vhost("gigco_pin") as vhost:
        url = database.create_database(server_url(), name)
        try:
            yield url, rabbitmq_url(vhost)
        finally:
            database.drop_database(server_url(), name)


def _ok(answer: Answer, status: int = 200) -> Any:
    assert answer.status == status, (answer.status, answer.body)
    return answer.body


def _seconds(later: str, earlier: str) -> float:
    return (dt.datetime.fromisoformat(later) - dt.datetime.fromisoformat(earlier)).total_seconds()


def _event(client: Client, job_id: int, token: str, kind: str) -> dict[str, Any] | None:
    events = _ok(client.call("GET", f"/v1/jobs/{job_id}/events", token=token))
    return next((e for e in events if e["type"] == kind), None)


def _window(client: Client, job_id: int, token: str, kind: str, key: str) -> float:
    """Seconds between ``kind``'s event and the deadline it set (``data[key]``)."""
    event = wait_for(lambda: _event(client, job_id, token, kind), timeout=30, what=kind)
    return _seconds(event["data"][key], event["created_at"])


def test_a_job_keeps_its_offer_and_opportunity_windows_across_a_changed_environment(
    own_stack: tuple[str, str], tmp_path: Path
) -> None:
    db, broker = own_stack
    journal = Journal()
    # Before: the API alone (no worker yet) takes job A; its pricing waits in the queue.
    with live_server(live_env(db, broker, **BEFORE), tmp_path / "api-before.log") as url:
        before = Client(url, journal)
        consumer = _ok(before.call("POST", "/v1/consumers", body=consumer_body()), 201)
        workers = [
            _ok(before.call("POST", "/v1/workers", body=worker_body()), 201) for _ in range(2)
        ]
        job_a = _ok(before.call("POST", "/v1/jobs", token=consumer["token"], body=job_body()), 201)
    assert job_a["status"] == "draft" and job_a["policy_version"] is not None
    token = consumer["token"]

    # After: new environment, new processes; the worker prices and offers job A now.
    env = live_env(db, broker, **AFTER)
    worker = start_worker(env, tmp_path / "worker-after.log")
    try:
        with live_server(env, tmp_path / "api-after.log") as url:
            after = Client(url, journal)
            assert _window(after, job_a["id"], token, "offered", "offer_expires_at") == 3600
            job_b = _ok(
                after.call("POST", "/v1/jobs", token=token, body=job_body(start=_days_ahead(5))),
                201,
            )
            assert job_b["policy_version"] == job_a["policy_version"] + 1
            assert _window(after, job_b["id"], token, "offered", "offer_expires_at") == 7200

            # Both in flight at once, each matched under its own opportunity window.
            for job in (job_a, job_b):
                _ok(after.call("POST", f"/v1/jobs/{job['id']}/offer/accept", token=token))
            assert _window(after, job_a["id"], token, "opportunity_offered", "expires_at") == 1800
            assert _window(after, job_b["id"], token, "opportunity_offered", "expires_at") == 60

            # The policies themselves, as any signed-in party reads them.
            read = workers[0]["token"]
            old = _ok(after.call("GET", f"/v1/policies/{job_a['policy_version']}", token=read))
            new = _ok(after.call("GET", f"/v1/policies/{job_b['policy_version']}", token=read))
            assert (old["offer_ttl_seconds"], new["offer_ttl_seconds"]) == (3600, 7200)
            assert old["fee_rate"] == new["fee_rate"] == "0.10"

            # The operator moves job A to the newest policy: recorded in its history, and
            # the next deadline (the next candidate's opportunity) follows the new window.
            moved = _ok(
                after.call("POST", f"/v1/jobs/{job_a['id']}/policy/upgrade", token=ADMIN_TOKEN)
            )
            assert moved["policy_version"] == job_b["policy_version"]
            upgraded = _event(after, job_a["id"], token, "policy_upgraded")
            assert upgraded is not None
            assert upgraded["data"] == {
                "from_version": job_a["policy_version"],
                "to_version": job_b["policy_version"],
            }
            offered = _event(after, job_a["id"], ADMIN_TOKEN, "opportunity_offered")
            assert offered is not None
            holder = next(w for w in workers if w["id"] == offered["data"].get("worker_id"))
            _ok(
                after.call(
                    "POST",
                    f"/v1/jobs/{job_a['id']}/opportunity/decline",
                    token=holder["token"],
                )
            )

            def second_offer() -> dict[str, Any] | None:
                events = _ok(after.call("GET", f"/v1/jobs/{job_a['id']}/events", token=token))
                offers = [e for e in events if e["type"] == "opportunity_offered"]
                return offers[1] if len(offers) > 1 else None

            second = wait_for(second_offer, timeout=30, what="the second opportunity")
            assert _seconds(second["data"]["expires_at"], second["created_at"]) == 60
    finally:
        stop_worker(worker)
    assert not journal.server_errors()


def _days_ahead(days: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
