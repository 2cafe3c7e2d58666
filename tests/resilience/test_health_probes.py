"""/healthz and the worker's probe see a frozen worker and a silent beat, then recover."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.polling import wait_for
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import SWEEP_SECONDS, TIMERS

pytestmark = pytest.mark.timeout(300)
STALL_SECONDS = float(TIMERS["GIGCO_HEALTH_STALL_SECONDS"])
GIGCO = Path(sys.executable).parent / "gigco"


def _health(stack: Stack) -> tuple[int | None, dict]:
    answer = stack.client.call("GET", "/healthz")
    return answer.status, answer.body if isinstance(answer.body, dict) else {}


def _probe(stack: Stack, nodename: str) -> int:
    """Exit code of the worker's liveness probe, as an orchestrator runs it."""
    return subprocess.run(
        [str(GIGCO), "health", "--worker", nodename],
        env={**os.environ, **stack.topology.env},
        capture_output=True,
        timeout=60,
    ).returncode


def test_a_frozen_worker_with_work_waiting_is_down_within_the_bound_and_back_after(
    stack: Stack, report: Callable[[str], None]
) -> None:
    nodename = f"worker@{socket.gethostname()}"
    wait_for(lambda: _health(stack)[0] == 200, timeout=30, what="/healthz 200 at the start")
    assert _probe(stack, nodename) == 0

    fleet = stack.fleet()
    worker = stack.topology.procs["worker"]
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        posted_at = time.time()
        fleet.start(range(HELD_BACK))
        _, body = wait_for(
            lambda: (h := _health(stack))[0] == 503 and h,
            timeout=STALL_SECONDS + 3 * SWEEP_SECONDS + 15,
            every=0.2,
            what="/healthz to say the workers are down",
        )
        down_after = time.time() - posted_at
        assert body["down"] == ["workers"], body
        assert "workers" in body["message"]
        assert body["workers"]["waiting_seconds"] > STALL_SECONDS
        assert _probe(stack, nodename) == 1  # the orchestrator would replace this worker
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    wait_for(lambda: _health(stack)[0] == 200, timeout=30, every=0.2, what="/healthz 200 again")
    up_after = time.time() - posted_at
    assert _probe(stack, nodename) == 0
    fleet.stop(check=False)
    report(
        f"worker frozen with {HELD_BACK} jobs posted: /healthz 503 naming workers after "
        f"{down_after:.1f}s (bound {STALL_SECONDS:g}s + a sweep), 200 again "
        f"{up_after - down_after:.1f}s after that; the worker's probe failed, then passed"
    )
    # Down within the bound plus the polling and a sweep of slack, not long after.
    assert down_after <= STALL_SECONDS + 3 * SWEEP_SECONDS + 5


def test_a_silent_beat_is_down_after_three_intervals_and_back_after(
    stack: Stack, report: Callable[[str], None]
) -> None:
    wait_for(lambda: _health(stack)[0] == 200, timeout=30, what="/healthz 200 at the start")
    beat = stack.topology.procs["beat"]
    os.killpg(beat.pid, signal.SIGSTOP)
    try:
        stopped_at = time.time()
        _, body = wait_for(
            lambda: (h := _health(stack))[0] == 503 and h,
            timeout=3 * SWEEP_SECONDS + 15,
            every=0.2,
            what="/healthz to say beat is down",
        )
        down_after = time.time() - stopped_at
        assert body["down"] == ["beat"], body
        assert "no sweep for" in body["beat"]["reason"]
    finally:
        os.killpg(beat.pid, signal.SIGCONT)
    wait_for(lambda: _health(stack)[0] == 200, timeout=30, every=0.2, what="/healthz 200 again")
    report(f"beat frozen: /healthz 503 naming beat after {down_after:.1f}s (bound 3 sweeps)")
    assert 3 * SWEEP_SECONDS - 1 <= down_after <= 3 * SWEEP_SECONDS + 5
