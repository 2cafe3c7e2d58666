"""The broker loses every message while messages wait in it: FLUSHDB on Redis; on RabbitMQ
the vhost is deleted and re-created (queues, messages and connections gone, as in a node
restart that lost its data)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.brokers import on_both_brokers
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

pytestmark = [pytest.mark.timeout(300), on_both_brokers]


def test_every_job_closes_within_a_sweep_and_grace_after_the_broker_is_flushed(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet, at_fault = stack.fleet_mid_flight()
    with stack.worker_frozen_with_steps_waiting(fleet):
        steps = stack.waiting_steps()
        lost, unacked = stack.broker.lose_everything()
        fault_at = time.time()

    closed_at, measured = stack.recovered(fleet, fault_at=fault_at, healthy_at=fault_at)
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight when the worker was frozen "
        f"{at_fault} and {HELD_BACK} posted after; losing {stack.broker.kind}'s data destroyed "
        f"{lost} waiting messages ({steps} counted as steps; see brokers.py) and {unacked} "
        "unacked; "
        f"{measured.summary()}; all closed {closed_at - fault_at:.1f}s after the flush"
    )
    assert lost + unacked >= steps >= HELD_BACK
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS
