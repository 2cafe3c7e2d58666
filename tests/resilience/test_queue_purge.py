"""The step queue is purged mid-flight (``celery purge``, ``rabbitmqctl purge_queue``, a
``DEL celery`` on Redis): every waiting step message is gone, nothing else is."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.brokers import on_both_brokers
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

pytestmark = [pytest.mark.timeout(300), on_both_brokers]


def test_every_job_closes_once_after_the_step_queue_is_purged_mid_flight(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet, at_fault = stack.fleet_mid_flight()
    # A warm shutdown (a deploy) hands the worker's prefetched messages back to the queue on
    # both brokers, so the purge reaches every waiting step: a frozen worker would keep up to
    # its prefetch window on RabbitMQ, out of a purge's reach. The last jobs are posted while
    # no worker runs, and their steps wait in the queue too.
    stopping_at = time.time()
    stopped_at = stack.topology.shut_down("worker")
    stack.post_held_back(fleet, timeout=60)
    messages, steps = stack.broker.purge()
    fault_at = time.time()
    stack.topology.start_worker("worker-2")
    healthy_at = stack.topology.wait_worker_ready("worker-2")

    closed_at, measured = stack.recovered(fleet, fault_at=fault_at, healthy_at=healthy_at)
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight when the worker was stopped "
        f"{at_fault} and {HELD_BACK} posted after; purging {stack.broker.kind}'s step queue "
        f"destroyed {messages} messages ({steps} steps); the warm shutdown took "
        f"{stopped_at - stopping_at:.1f}s, then no worker for "
        f"{healthy_at - stopped_at:.1f}s; {measured.summary()}; all closed "
        f"{closed_at - fault_at:.1f}s after the purge"
    )
    assert steps >= HELD_BACK, "the purge destroyed too little to show anything"
    assert measured.stranded >= HELD_BACK
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS
