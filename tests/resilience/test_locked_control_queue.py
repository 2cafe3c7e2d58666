"""A worker whose control queue is still locked by a connection that is going away.

When a RabbitMQ cluster node dies, the exclusive control queue (``<name>.celery.pidbox``) of
the worker connected to it stays locked by that dead connection for a moment, and the
worker, reconnected to a live node within milliseconds, is refused its declare
(``RESOURCE_LOCKED``). Celery's consumer counts that as unrecoverable and the worker exits:
in tests/clusters it left a fleet's jobs in draft for good. Here the lock is held on purpose,
by a connection of the test's, while a new worker starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from celery.utils.nodenames import host_format
from kombu import Connection

from gigco.tasks import app
from tests.harness.polling import wait_for
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

RESTART_PAUSE_SECONDS = 1.0

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True),
]


def test_a_worker_refused_its_locked_control_queue_retries_and_then_runs_every_step(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet, at_fault = stack.fleet_mid_flight()
    name = host_format("worker-2@%h")
    log = stack.topology.log("worker-2")

    def refusals() -> int:
        """Log records of the worker's refused declare (one line each, traceback and all)."""
        return sum(
            "RESOURCE_LOCKED" in line for line in log.read_text(errors="replace").splitlines()
        )

    with Connection(stack.broker.url, connect_timeout=5) as holder:
        # The new worker's control queue, declared as the worker declares it, exclusive to
        # this connection: as a dead node's connection holds it until the cluster cleans up.
        app.control.mailbox.get_queue(name)(holder.default_channel).declare()
        fault_at = stack.topology.kill("worker")
        fleet.start()  # the last jobs are posted while no worker runs
        stack.topology.start_worker("worker-2")
        worker = stack.topology.procs["worker-2"]

        def refused_twice() -> bool:
            if worker.poll() is not None:
                raise AssertionError(f"worker-2 exited: {log.read_text()[-3000:]}")
            return refusals() >= 2

        # Refused, still running, and asking again.
        wait_for(refused_twice, timeout=60, every=0.05, what="worker-2 to be refused twice")
    released_at = time.time()
    healthy_at = stack.topology.wait_worker_ready("worker-2")

    # Its control queue is its own again: remote control (Flower's inspect) reaches it.
    pong = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "gigco.tasks", "inspect", "ping",
         "--destination", name, "--timeout", "5", "--json"],
        env={**os.environ, **stack.topology.env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert json.loads(pong.stdout) == {name: {"ok": "pong"}}, pong.stderr

    closed_at, measured = stack.recovered(fleet, fault_at=fault_at, healthy_at=released_at)
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight when the worker was killed, "
        f"{HELD_BACK} posted after; the new worker was refused its control queue "
        f"{refusals()} times while it was held, ready {healthy_at - released_at:.2f}s after "
        "the release; "
        f"{measured.summary()}; all closed {closed_at - released_at:.1f}s after the release"
    )
    # Celery paces the reconnects (at most 5 a second, then a 1 s pause).
    assert healthy_at - released_at <= RESTART_PAUSE_SECONDS + SLACK_SECONDS
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS
