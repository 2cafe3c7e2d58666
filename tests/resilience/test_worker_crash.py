"""SIGKILL of the Celery worker's whole process group in the middle of a fleet of jobs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.brokers import on_both_brokers
from tests.harness.polling import wait_for
from tests.resilience.invariants import overdue_steps
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

pytestmark = [pytest.mark.timeout(300), on_both_brokers]


def test_every_job_closes_once_after_the_worker_is_killed_mid_flight(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet, at_fault = stack.fleet_mid_flight()
    queued, unacked = stack.broker.counts()
    fault_at = stack.topology.kill("worker")
    fleet.start()  # the last jobs are posted while no worker runs
    # The worker stays dead until some step is overdue past the grace: work really is stuck.
    wait_for(
        lambda: overdue_steps(stack.engine, GRACE_SECONDS),
        timeout=30,
        what="a step overdue past the grace",
    )
    stack.topology.start_worker("worker-2")
    healthy_at = stack.topology.wait_worker_ready("worker-2")

    closed_at, measured = stack.recovered(fleet, fault_at=fault_at, healthy_at=healthy_at)
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight at the kill {at_fault} and "
        f"{HELD_BACK} posted after it; {queued} messages queued and {unacked} unacked in "
        f"{stack.broker.kind}; "
        f"no worker for {healthy_at - fault_at:.2f}s (until the new one was ready); "
        f"{measured.summary()}; all closed {closed_at - fault_at:.1f}s after the kill"
    )
    assert measured.stranded >= HELD_BACK, "the kill held up too little work to show anything"
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS
