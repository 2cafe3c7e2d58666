"""A broker that accepts TCP and never answers: the API still answers in time, /healthz names
the broker, and the sweeper recovers the steps the API could not send. On both brokers.

The API reaches the broker through a proxy that turns into a black hole; the worker and beat
reach it directly (the broker is fine, the API's route to it is not), so the step the API
could not send is done by the sweeper, through the worker, while the hole lasts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask

from gigco.config import Settings
from gigco.tasks import configure as configure_celery
from gigco.web import create_app
from tests.api.helpers import assert_error
from tests.blackhole import Blackhole, blackhole
from tests.brokers import both_brokers
from tests.harness.bodies import future
from tests.harness.http import Api
from tests.harness.polling import wait_for

pytestmark = pytest.mark.timeout(180)


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}"))


@pytest.fixture
def proxied(
    broker_url: str, settings: Settings, live_worker: object
) -> Iterator[tuple[Flask, Blackhole]]:
    """An app whose broker is behind a Blackhole; the shared Celery app is restored after."""
    parts = urlsplit(broker_url)
    with blackhole((parts.hostname or "127.0.0.1", parts.port or 0)) as proxy:
        try:
            yield create_app(settings.replace(broker_url=_via(broker_url, proxy.port))), proxy
        finally:
            configure_celery(settings)


def _job() -> dict[str, object]:
    return {
        "title": "Fix the sink",
        "category": "plumbing",
        "location": {"lat": 52.53, "lng": 13.41},
        "scheduled_start": future(),
        "estimated_hours": 2,
    }


def _timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@both_brokers
def test_a_blackholed_broker_holds_no_request_and_the_sweeper_recovers_the_step(
    api: Api, proxied: tuple[Flask, Blackhole], settings: Settings
) -> None:
    app, proxy = proxied
    client = app.test_client()
    consumer = api.consumer()
    # At worst three broker timeouts (Redis: the command on the pooled connection, then the
    # retry's connect and its health check; RabbitMQ: connect and handshake, confirm), and
    # a second and a half for a busy machine.
    bound = 3 * settings.broker_timeout_seconds + 1.5

    first = client.post("/v1/jobs", json=_job(), headers=consumer["headers"])
    assert first.status_code == 201, first.json
    api.wait_status(first.json["id"], "offered")
    assert client.get("/healthz").status_code == 200

    proxy.swallow()
    posted, took = _timed(lambda: client.post("/v1/jobs", json=_job(), headers=consumer["headers"]))
    assert posted.status_code == 201, posted.json
    assert took < bound, f"POST /v1/jobs took {took:.1f}s with the broker blackholed"
    probe, probe_took = _timed(lambda: client.get("/healthz"))
    error = assert_error(probe, 503)
    assert "broker" in error["down"] and "broker" in error["message"]
    assert probe_took < bound
    assert_error(client.get("/readyz"), 503)

    # The step the API could not send waits in the database; the sweeper re-kicks it after
    # the grace, and the worker (which reaches the broker) does it.
    job_id = posted.json["id"]
    priced = wait_for(
        lambda: next((e for e in api.events(job_id) if e["type"] == "priced"), None),
        timeout=settings.stuck_step_grace_seconds + 3 * settings.sweep_interval_seconds + 10,
        what=f"job {job_id} to be priced by the sweeper",
    )
    created = api.events(job_id)[0]
    waited = dt.datetime.fromisoformat(priced["created_at"]) - dt.datetime.fromisoformat(
        created["created_at"]
    )
    assert waited >= dt.timedelta(seconds=settings.stuck_step_grace_seconds), waited

    # The route is back: the API publishes at once again, and is healthy.
    proxy.forward()
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=15, what="/readyz 200")
    again, took = _timed(lambda: client.post("/v1/jobs", json=_job(), headers=consumer["headers"]))
    assert again.status_code == 201 and took < bound
    api.wait_status(again.json["id"], "offered", timeout=settings.stuck_step_grace_seconds)
    assert client.get("/healthz").status_code == 200
