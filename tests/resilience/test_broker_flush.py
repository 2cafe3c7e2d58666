"""FLUSHDB on the broker's Redis database while messages wait in it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.resilience.invariants import recovery, step_timings, violations
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

pytestmark = pytest.mark.timeout(300)


def test_every_job_closes_within_a_sweep_and_grace_after_the_broker_is_flushed(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet, at_fault = stack.fleet_mid_flight()
    broker = stack.redis.client()
    with stack.worker_frozen_with_steps_waiting(fleet):
        steps = stack.waiting_steps()
        with broker.pipeline(transaction=True) as pipe:
            lost, unacked, _ = pipe.llen("celery").hlen("unacked").flushdb().execute()
        fault_at = time.time()

    closed_at = fleet.wait_all_closed(timeout=120)
    fleet.stop()

    assert violations(stack.engine, fleet.job_ids.values()) == []
    assert stack.journal.server_errors() == []
    measured = recovery(
        step_timings(stack.engine, fleet.job_ids.values()), fault_at=fault_at, healthy_at=fault_at
    )
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight when the worker was frozen "
        f"{at_fault} and {HELD_BACK} posted after; FLUSHDB destroyed {lost} waiting messages "
        f"({steps} of them lifecycle steps) and {unacked} unacked entries; "
        f"{measured.summary()}; all closed {closed_at - fault_at:.1f}s after the flush"
    )
    assert lost >= steps >= HELD_BACK
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS
