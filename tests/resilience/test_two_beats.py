"""Two celery beat processes at once (a botched deploy): sweeps run twice, effects once."""

from __future__ import annotations

import datetime as dt
import re
import signal
import time
from collections.abc import Callable

import pytest

from tests.brokers import on_both_brokers
from tests.harness.polling import wait_for
from tests.resilience.invariants import violations
from tests.resilience.stack import Stack

pytestmark = [pytest.mark.timeout(300), on_both_brokers]
TS = r"^ts=(\S+) "


def _times(stack: Stack, process: str, pattern: str) -> list[tuple[float, str]]:
    """(wall-clock time, rest of line) of each line of ``process``'s log matching ``pattern``."""
    text = stack.topology.log(process).read_text(errors="replace")
    return [
        (dt.datetime.fromisoformat(ts).timestamp(), rest)
        for ts, rest in re.findall(TS + f"(.*{pattern}.*)$", text, re.MULTILINE)
    ]


def sweeps_sent(stack: Stack, beat: str) -> list[float]:
    """When ``beat`` sent a sweep."""
    return [t for t, _ in _times(stack, beat, "Sending due task sweep")]


def sweep_results(stack: Stack) -> list[tuple[float, dict[str, int]]]:
    """When each sweep that found work finished in the worker, and what it found: timers,
    stuck, sent (the sweep's own INFO line; an idle sweep logs at DEBUG)."""
    found = _times(stack, "worker", r"logger=gigco\.sweeps msg=sweep ")
    return [
        (t, {k: int(v) for k, v in re.findall(r"(timers|stuck|deliveries|sent)=(\d+)", rest)})
        for t, rest in found
    ]


def test_two_beats_at_once_double_no_effect(stack: Stack, report: Callable[[str], None]) -> None:
    stack.topology.start_beat("beat-2")
    wait_for(lambda: sweeps_sent(stack, "beat-2"), timeout=60, what="the second beat to sweep")
    overlap_from = time.time()
    fleet, at_fault = stack.fleet_mid_flight()
    # Give both beats' sweeps lost steps to share out: freeze the worker, post the last jobs,
    # destroy their waiting messages, and let the sweeps (twice as many as usual) re-kick.
    with stack.worker_frozen_with_steps_waiting(fleet):
        stack.broker.lose_everything()
    # Both beats stay up until the whole fleet has gone all the way through.
    closed_at = fleet.wait_all_closed(timeout=120)
    stack.topology.kill("beat-2", signal.SIGTERM)
    overlap_to = time.time()
    fleet.stop()

    assert violations(stack.engine, fleet.job_ids.values()) == []
    assert stack.journal.server_errors() == []
    first = [t for t in sweeps_sent(stack, "beat") if overlap_from <= t <= overlap_to]
    second = [t for t in sweeps_sent(stack, "beat-2") if overlap_from <= t <= overlap_to]
    results = [r for t, r in sweep_results(stack) if overlap_from <= t <= overlap_to]
    timers = sum(r["timers"] for r in results)
    stuck = sum(r["stuck"] for r in results)
    report(
        f"{fleet.size} jobs ({at_fault['in_flight']} in flight at the flush) driven while two "
        f"beats ran for {overlap_to - overlap_from:.1f}s: "
        f"{len(first)} + {len(second)} sweeps sent, {len(results)} of them found work and "
        f"armed {timers} timers and re-kicked {stuck} stuck steps; all closed "
        f"{closed_at - overlap_from:.1f}s after the start; nothing doubled"
    )
    assert len(first) >= 3 and len(second) >= 3, "the two beats did not overlap"
    assert stuck >= 1, "the sweeps had no stuck steps to share"
