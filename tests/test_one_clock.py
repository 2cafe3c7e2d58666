"""One clock: an API and a worker whose hosts' clocks are 30 s off (Debian's ``faketime``,
libfaketime, not a patched function) set and judge every deadline by the database's clock.

Each scenario runs its own stack (tests/harness/private_stack.py) so no other worker of the
run takes its tasks.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.bodies import consumer_body, job_body
from tests.harness.env import TIMERS
from tests.harness.http import Client
from tests.harness.polling import wait_for
from tests.harness.private_stack import private_stack

pytestmark = pytest.mark.skipif(
    shutil.which("faketime") is None, reason="faketime not installed (.ci/run installs it)"
)

OFFER_TTL = float(TIMERS["GIGCO_OFFER_TTL_SECONDS"])
# A deadline fires within a sweep interval plus the stuck-step grace of when it was due.
USUAL_BOUND = float(TIMERS["GIGCO_SWEEP_INTERVAL_SECONDS"]) + float(
    TIMERS["GIGCO_STUCK_STEP_GRACE_SECONDS"]
)
SLACK = 1.0  # this machine is shared: scheduling, a test's polling


def faked(skew: str) -> tuple[str, ...]:
    """The prefix that runs a program under libfaketime, its clock ``skew`` off (``+30s``)."""
    return ("faketime", "-f", skew)


@pytest.fixture
def skewed_stack(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Client, dict[str, str]]]:
    """gunicorn with its clock ``api`` off and a worker (and beat) with its clock ``worker``
    off, on a stack of their own; yields a client of the API."""
    skews: dict[str, str] = request.param
    with private_stack(
        tmp_path, worker_prefix=faked(skews["worker"]), api_prefix=faked(skews["api"])
    ) as client:
        yield client, skews


def _at(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def _offered(client: Client, token: str) -> tuple[int, dict[str, Any], float]:
    """A job posted and offered; returns it and the (real) time it was seen offered."""
    answer = client.call("POST", "/v1/jobs", token=token, body=job_body())
    assert answer.status == 201, answer
    job_id = answer.body["id"]

    def offered() -> dict[str, Any] | None:
        body = client.call("GET", f"/v1/jobs/{job_id}", token=token).body
        return body if body.get("status") == "offered" else None

    job = wait_for(offered, timeout=20, every=0.05, what=f"job {job_id} offered")
    return job_id, job, time.time()


SKEWS = [
    pytest.param({"worker": "+30s", "api": "-30s"}, id="worker-ahead-api-behind"),
    pytest.param({"worker": "-30s", "api": "+30s"}, id="worker-behind-api-ahead"),
]


@pytest.mark.parametrize("skewed_stack", SKEWS, indirect=True)
def test_skewed_hosts_set_and_judge_deadlines_by_the_database_clock(
    skewed_stack: tuple[Client, dict[str, str]],
) -> None:
    client, _skews = skewed_stack
    signup = client.call("POST", "/v1/consumers", body=consumer_body())
    assert signup.status == 201, signup
    token = signup.body["token"]

    # The worker sets the offer's deadline by the database's clock (this test runs on the
    # real clock, the database's host's): TTL after it was sent, not 30 s either way.
    kept_id, kept, seen = _offered(client, token)
    expires = _at(kept["offer_expires_at"])
    assert seen - 2.0 <= expires - OFFER_TTL <= seen + SLACK, (kept, seen)

    # An API host 30 s fast refuses nothing early: the offer is accepted well inside its window.
    assert time.time() < expires - 1.0
    accepted = client.call("POST", f"/v1/jobs/{kept_id}/offer/accept", token=token)
    assert accepted.status == 200, accepted

    # Left alone, an offer expires neither early nor late by more than the usual bound.
    lapsed_id, lapsed, _ = _offered(client, token)
    deadline = _at(lapsed["offer_expires_at"])

    def status() -> str:
        return str(client.call("GET", f"/v1/jobs/{lapsed_id}", token=token).body["status"])

    while status() == "offered" and time.time() < deadline + USUAL_BOUND + SLACK:
        time.sleep(0.05)
    expired_by = time.time()
    assert status() == "expired", "the offer did not expire within the usual bound"
    events = client.call("GET", f"/v1/jobs/{lapsed_id}/events", token=token).body
    expiry = next(e for e in events if e["to_status"] == "expired")
    assert _at(expiry["created_at"]) >= deadline, "expired before its deadline"
    assert deadline <= expired_by <= deadline + USUAL_BOUND + SLACK
    assert accepted.body["status"] == "accepted"
