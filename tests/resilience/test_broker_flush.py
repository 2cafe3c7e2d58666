"""FLUSHDB on the broker's Redis database while messages wait in it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.resilience.invariants import recovery, step_timings, violations
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS
from tests.support import wait_for

pytestmark = pytest.mark.timeout(300)


def test_every_job_closes_within_a_sweep_and_grace_after_the_broker_is_flushed(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet, at_fault = stack.fleet_mid_flight()
    broker = stack.redis.client()
    # The worker prefetches whatever reaches the queue within milliseconds, so freeze it
    # (as a long GC pause or a saturated host would) until steps really wait in Redis:
    # the last jobs are posted now, so at least their pricing is there.
    worker = stack.topology.procs["worker"]
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        fleet.start()
        wait_for(
            lambda: stack.waiting_steps() >= HELD_BACK,
            timeout=30,
            what="steps waiting in Redis",
        )
        steps = stack.waiting_steps()
        with broker.pipeline(transaction=True) as pipe:
            lost, unacked, _ = pipe.llen("celery").hlen("unacked").flushdb().execute()
        fault_at = time.time()
    finally:
        os.killpg(worker.pid, signal.SIGCONT)

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
