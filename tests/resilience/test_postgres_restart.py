"""A PostgreSQL restart (the suite's own cluster) in the middle of a fleet of jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.http import Answer, is_error_envelope
from tests.harness.polling import wait_for
from tests.resilience.fleet import job_body
from tests.resilience.services import PrivatePostgres, PrivateRedis
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

pytestmark = pytest.mark.timeout(300)


def retried_tasks(stack: Stack) -> int:
    """How many task runs the worker has retried on a database error so far."""
    text = stack.topology.log("worker").read_text(errors="replace")
    return sum(1 for line in text.splitlines() if " retry: Retry in " in line and "Error" in line)


def test_calls_during_a_postgres_outage_get_503_and_every_job_closes_afterwards(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet, at_fault = stack.fleet_mid_flight()
    job_id, consumer = fleet.job_ids[0], fleet.consumers[0]
    probes: list[Answer] = []

    def probe() -> None:
        """A client's calls while the database is away: a read, a repeated post, health."""
        probes.append(stack.client.call("GET", f"/v1/jobs/{job_id}", token=consumer.token))
        probes.append(
            stack.client.call(
                "POST",
                "/v1/jobs",
                token=consumer.token,
                body=job_body(0, 0),
                headers={"Idempotency-Key": f"{fleet.tag}-job-0"},  # a replay: harmless
            )
        )
        probes.append(stack.client.call("GET", "/healthz"))

    fault_at = time.time()
    stack.postgres.stop()
    down_at = time.time()
    fleet.start()  # the last jobs are posted during the outage
    # Down until the outage is seen on both sides: the API has answered, and the worker has
    # retried tasks on the database error for longer than a sweep plus the grace.
    wait_for(
        lambda: (
            probe()
            or (
                len(probes) >= 30
                and retried_tasks(stack) >= 3
                and time.time() - down_at > SWEEP_SECONDS + GRACE_SECONDS
            )
        ),
        timeout=60,
        every=0.1,
        what="503s from the API and task retries in the worker",
    )
    up_at = time.time()
    stack.postgres.start()
    healthy_at = time.time()

    closed_at, measured = stack.recovered(fleet, fault_at=fault_at, healthy_at=healthy_at)

    # Calls answered before the restart began (one answered after it may rightly succeed).
    during = [a for a in stack.journal.between(down_at, up_at) if a.answered_at <= up_at]
    assert len(during) >= 30
    assert [a for a in during if not (a.status == 503 and is_error_envelope(a.body, 503))] == []
    assert all(a.headers.get("Retry-After") for a in during if a.path != "/healthz")
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight at the stop {at_fault} and "
        f"{HELD_BACK} posted during the outage; "
        f"database down {up_at - down_at:.2f}s; {len(during)} calls answered during the outage, "
        f"all 503 with the envelope; {retried_tasks(stack)} task retries; "
        f"{measured.summary()}; all closed {closed_at - healthy_at:.1f}s after the restart"
    )
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS


def test_a_read_whose_connection_dies_as_it_ends_still_gets_its_answer(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    url = private_postgres.url_for_create(f"dying_{uuid.uuid4().hex[:8]}")
    env = {
        **os.environ,
        "GIGCO_DATABASE_URL": url,
        "GIGCO_BROKER_URL": private_redis.url(),
        "GIGCO_LOG_LEVEL": "ERROR",
    }
    script = Path(__file__).with_name("dying_connection.py")
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout)
    assert answers == [[200, answers[0][1]]] * len(answers) and answers[0][1] >= 6
