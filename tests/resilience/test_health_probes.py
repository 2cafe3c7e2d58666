"""/healthz and the worker's probe see a frozen worker and a silent beat, then recover, on
both brokers.

Every verdict is checked against the facts the server reported with it (its ``checked_at``
and the times it read from the database), not against the test's own clock: a loaded
machine may answer a poll late, but it may never call the part ok past the bound nor down
before it. The polls give up only after a generous deadline derived from the settings.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gigco.health import BEAT_INTERVALS
from tests.brokers import on_both_brokers
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import ADMIN_TOKEN, SWEEP_SECONDS, TIMERS

pytestmark = [pytest.mark.timeout(300), on_both_brokers]
STALL_SECONDS = float(TIMERS["GIGCO_HEALTH_STALL_SECONDS"])
BEAT_BOUND = BEAT_INTERVALS * SWEEP_SECONDS
# How long past a bound a poll keeps trying before the test gives up: room for a loaded
# machine to post jobs and answer; never part of what is asserted.
PATIENCE = 10 * (STALL_SECONDS + SWEEP_SECONDS)
GIGCO = Path(sys.executable).parent / "gigco"


@dataclass(frozen=True)
class Verdict:
    """One /healthz answer: its status, its body and when the server checked."""

    status: int
    body: dict[str, Any]

    @property
    def checked_at(self) -> dt.datetime:
        """The server's clock when it checked."""
        return dt.datetime.fromisoformat(self.body["checked_at"])

    def since(self, *times: str | None) -> float:
        """Seconds from the latest of ``times`` (ISO times the server reported) to the check;
        infinite when there is none."""
        known = [dt.datetime.fromisoformat(t) for t in times if t]
        return (self.checked_at - max(known)).total_seconds() if known else float("inf")


def _health(stack: Stack) -> Verdict | None:
    answer = stack.client.call("GET", "/healthz", token=ADMIN_TOKEN)  # the facts: operator only
    if answer.status is None or not isinstance(answer.body, dict) or "down" not in answer.body:
        return None  # no answer in time: a loaded machine, not a verdict
    return Verdict(answer.status, answer.body)


def _poll(
    stack: Stack, until: Callable[[Verdict], bool], *, timeout: float, what: str
) -> list[Verdict]:
    """Every verdict until ``until`` holds for one (the last); fail after ``timeout``."""
    seen: list[Verdict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        verdict = _health(stack)
        if verdict is not None:
            seen.append(verdict)
            if until(verdict):
                return seen
        time.sleep(0.2)
    last = seen[-1].body if seen else None
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}")


def _ok(verdict: Verdict) -> bool:
    return verdict.status == 200


def _down(part: str) -> Callable[[Verdict], bool]:
    """Until /healthz names ``part`` (a blip of another part on a loaded machine is not it)."""
    return lambda verdict: part in verdict.body["down"]


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
    _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 at the start")
    assert _probe(stack, nodename) == 0

    fleet = stack.fleet()
    worker = stack.topology.procs["worker"]
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        fleet.start(range(HELD_BACK))
        seen = _poll(
            stack,
            _down("workers"),
            timeout=STALL_SECONDS + PATIENCE,
            what="/healthz to say workers are down",
        )
        down = seen[-1]
        assert down.status == 503 and down.body["down"] == ["workers"], down.body
        assert "workers" in down.body["message"]
        facts = down.body["workers"]
        # Down only past the bound, measured exactly (the body's waiting_seconds is rounded).
        waited = down.since(facts["oldest_waiting_since"])
        assert STALL_SECONDS < waited < float("inf"), facts
        assert down.since(facts["last_task_finished_at"]) > STALL_SECONDS, facts
        # ... and never ok past it: before, nothing had waited or not longer than the bound.
        for verdict in seen[:-1]:
            assert verdict.body["workers"]["status"] == "ok", verdict.body
            oldest = verdict.body["workers"]["oldest_waiting_since"]
            assert oldest is None or verdict.since(oldest) <= STALL_SECONDS, verdict.body
        assert _probe(stack, nodename) == 1  # the orchestrator would replace this worker
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    resumed_at = time.time()
    up = _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 again")[-1]
    up_after = up.checked_at.timestamp() - resumed_at
    finished = dt.datetime.fromisoformat(up.body["workers"]["last_task_finished_at"])
    assert finished > dt.datetime.fromisoformat(facts["oldest_waiting_since"])
    assert _probe(stack, nodename) == 0
    fleet.stop(check=False)
    previous = seen[-2].checked_at if len(seen) > 1 else None
    gap = f"{(down.checked_at - previous).total_seconds():.1f}s" if previous else "none"
    report(
        f"[{stack.broker.kind}] worker frozen with {HELD_BACK} jobs posted: /healthz 503 naming "
        f"workers when work had waited {waited:.2f}s (bound {STALL_SECONDS:g}s; poll gap "
        f"{gap}), 200 again {up_after:.1f}s after SIGCONT; the worker's probe failed, then passed"
    )


def test_a_silent_beat_is_down_after_three_intervals_and_back_after(
    stack: Stack, report: Callable[[str], None]
) -> None:
    healthy = _poll(
        stack,
        lambda v: v.status == 200 and v.body["beat"]["last_sweep_at"] is not None,
        timeout=PATIENCE,
        what="/healthz 200 with a sweep sent",
    )[-1]
    beat = stack.topology.procs["beat"]
    os.killpg(beat.pid, signal.SIGSTOP)
    try:
        stopped_at = time.time()
        seen = _poll(
            stack, _down("beat"), timeout=BEAT_BOUND + PATIENCE, what="/healthz to say beat is down"
        )
        down = seen[-1]
        assert down.status == 503 and down.body["down"] == ["beat"], down.body
        facts = down.body["beat"]
        assert "no sweep for" in facts["reason"]
        # The silence began with the freeze: the last sweep is the one beat sent up to it.
        last_sweep = dt.datetime.fromisoformat(facts["last_sweep_at"])
        assert dt.datetime.fromisoformat(healthy.body["beat"]["last_sweep_at"]) <= last_sweep
        assert last_sweep.timestamp() <= stopped_at
        # Down only past three intervals, and never ok past them.
        silent = down.since(facts["last_sweep_at"], facts["started_at"])
        assert BEAT_BOUND < silent < float("inf"), facts
        for verdict in seen[:-1]:
            assert verdict.body["beat"]["status"] == "ok", verdict.body
            beat_facts = verdict.body["beat"]
            assert (
                verdict.since(beat_facts["last_sweep_at"], beat_facts["started_at"]) <= BEAT_BOUND
            )
    finally:
        os.killpg(beat.pid, signal.SIGCONT)
    up = _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 again")[-1]
    assert dt.datetime.fromisoformat(up.body["beat"]["last_sweep_at"]) > last_sweep
    report(
        f"[{stack.broker.kind}] beat frozen: /healthz 503 naming beat after {silent:.2f}s "
        f"without a sweep (bound {BEAT_BOUND:g}s), "
        f"{down.checked_at.timestamp() - stopped_at:.1f}s after SIGSTOP"
    )
