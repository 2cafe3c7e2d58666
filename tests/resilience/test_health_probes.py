"""/healthz and each worker's probe see a frozen worker, a stalled webhook backlog and a
silent beat, then recover, on both brokers; a worker's probe fails only for a stall on the
queues that worker consumes, never for another worker's nor for beat's.

The stack runs production's split (docker-compose.yml): a lifecycle worker on the steps,
late steps and sweeps queues, and a webhooks worker on the webhooks queue.

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
import sqlalchemy as sa

from gigco.broker import RECOVERY_QUEUE, STEPS_QUEUE, SWEEPS_QUEUE, WEBHOOK_QUEUE
from gigco.health import BEAT_INTERVALS
from gigco.models import DeliveryStatus, Job, WebhookDelivery
from tests.brokers import on_both_brokers
from tests.harness.bodies import consumer_body, job_body
from tests.harness.polling import wait_for
from tests.harness.webhooks import receiving
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import ADMIN_TOKEN, SWEEP_SECONDS, TIMERS

pytestmark = [pytest.mark.timeout(300), on_both_brokers]
STALL_SECONDS = float(TIMERS["GIGCO_HEALTH_STALL_SECONDS"])
BEAT_BOUND = BEAT_INTERVALS * SWEEP_SECONDS
# How long past a bound a poll keeps trying before the test gives up: room for a loaded
# machine to post jobs and answer; never part of what is asserted.
PATIENCE = 10 * (STALL_SECONDS + SWEEP_SECONDS)
GIGCO = Path(sys.executable).parent / "gigco"
HOST = socket.gethostname()
LIFECYCLE, WEBHOOKS = f"lifecycle@{HOST}", f"webhooks@{HOST}"
# Beat's first match retry lands past the arming horizon: only a sweep would send it.
MATCH_RETRY_SECONDS = 3


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


PROBED: dict[str, str] = {}  # each worker's last probe output, for a failure's message


def _probe(stack: Stack, nodename: str) -> int:
    """Exit code of the worker's liveness probe, as an orchestrator runs it."""
    done = subprocess.run(
        [str(GIGCO), "health", "--worker", nodename],
        env={**os.environ, **stack.topology.env},
        capture_output=True,
        timeout=60,
    )
    PROBED[nodename] = done.stdout.decode(errors="replace")
    return done.returncode


def test_a_frozen_lifecycle_worker_is_down_within_the_bound_and_the_webhooks_worker_is_not(
    split: Stack, report: Callable[[str], None]
) -> None:
    stack = split
    _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 at the start")
    assert (_probe(stack, LIFECYCLE), _probe(stack, WEBHOOKS)) == (0, 0)

    fleet = stack.fleet()
    worker = stack.topology.procs["lifecycle"]
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
        # ... and never ok past it: before, nothing had waited longer than the bound, or no
        # message waited in the lifecycle's queues (on RabbitMQ the frozen worker holds its
        # prefetch unacknowledged until beat's sweeps queue up past it; docs/deploy.md).
        for verdict in seen[:-1]:
            assert verdict.body["workers"]["status"] == "ok", verdict.body
            oldest = verdict.body["workers"]["oldest_waiting_since"]
            depths = verdict.body["broker"].get("queues") or {}
            ready = sum(depths.get(q) or 0 for q in (STEPS_QUEUE, RECOVERY_QUEUE, SWEEPS_QUEUE))
            late = oldest is not None and verdict.since(oldest) > STALL_SECONDS
            assert not (late and ready), verdict.body
        # The orchestrator would replace the frozen worker, and only it: the webhooks worker,
        # idle all along (it started before the freeze), consumes none of the waiting queues.
        assert _probe(stack, LIFECYCLE) == 1
        assert _probe(stack, WEBHOOKS) == 0, PROBED
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    resumed_at = time.time()
    up = _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 again")[-1]
    up_after = up.checked_at.timestamp() - resumed_at
    # ... and the worker runs what waited.
    _poll(
        stack,
        lambda v: (
            v.since(facts["oldest_waiting_since"], v.body["workers"]["last_task_finished_at"])
            < v.since(facts["oldest_waiting_since"])
        ),
        timeout=PATIENCE,
        what="a task finished after the stall",
    )
    assert (_probe(stack, LIFECYCLE), _probe(stack, WEBHOOKS)) == (0, 0)
    fleet.stop(check=False)
    previous = seen[-2].checked_at if len(seen) > 1 else None
    gap = f"{(down.checked_at - previous).total_seconds():.1f}s" if previous else "none"
    report(
        f"[{stack.broker.kind}] lifecycle worker frozen with {HELD_BACK} jobs posted: /healthz "
        f"503 naming workers when work had waited {waited:.2f}s (bound {STALL_SECONDS:g}s; poll "
        f"gap {gap}), 200 again {up_after:.1f}s after SIGCONT; its probe failed, then passed; "
        "the webhooks worker's probe passed throughout"
    )


def _pending_deliveries(stack: Stack) -> int:
    with stack.engine.connect() as conn:
        return conn.scalar(
            sa.select(sa.func.count()).where(WebhookDelivery.status == DeliveryStatus.PENDING)
        )


def test_a_stalled_webhook_backlog_fails_the_webhooks_workers_probe_and_no_other(
    split: Stack, report: Callable[[str], None]
) -> None:
    stack = split
    client = stack.client
    with receiving() as receiver:
        consumer = client.call("POST", "/v1/consumers", body=consumer_body()).body
        token = consumer["token"]
        hook = client.call(
            "POST", "/v1/webhook-endpoints", token=token, body={"url": receiver.url("/stall")}
        )
        assert hook.status == 201, hook
        _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 at the start")
        worker = stack.topology.procs["webhooks"]
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            stopped_at = time.time()
            # More messages than the frozen worker prefetches (RabbitMQ pushes it 4).
            for _ in range(HELD_BACK * 2):
                posted = client.call("POST", "/v1/jobs", token=token, body=job_body())
                assert posted.status == 201, posted
            wait_for(
                lambda: _probe(stack, WEBHOOKS) == 1,
                timeout=STALL_SECONDS + PATIENCE,
                every=0.5,
                what="the webhooks worker's probe to fail",
            )
            failed_after = time.time() - stopped_at
            # The lifecycle worker, busy with those jobs all along, is not touched by it.
            assert _probe(stack, LIFECYCLE) == 0, PROBED
            down = _poll(stack, _down("workers"), timeout=PATIENCE, what="/healthz workers down")
            facts = down[-1].body["workers"]
            assert down[-1].body["down"] == ["workers"], down[-1].body
            assert down[-1].since(facts["oldest_waiting_since"]) > STALL_SECONDS, facts
            assert WEBHOOK_QUEUE in facts["reason"], facts
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        wait_for(
            lambda: _pending_deliveries(stack) == 0,
            timeout=PATIENCE,
            what="the backlog delivered after SIGCONT",
        )
        assert len(receiver.at("/stall", 204)) >= HELD_BACK * 2
    _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 again")
    assert (_probe(stack, LIFECYCLE), _probe(stack, WEBHOOKS)) == (0, 0)
    report(
        f"[{stack.broker.kind}] webhooks worker frozen, {HELD_BACK * 2} jobs' messages waiting: "
        f"its probe failed {failed_after:.1f}s after SIGSTOP (bound {STALL_SECONDS:g}s), the "
        "lifecycle worker's passed; both passed after SIGCONT"
    )


def _deadline(stack: Stack, job_id: int) -> tuple[dt.datetime | None, dt.datetime | None, int]:
    """The job's deadline, when a sweep armed it, and its matching rounds so far."""
    with stack.engine.connect() as conn:
        row = conn.execute(
            sa.select(Job.timer_at, Job.timer_armed_at, Job.match_round).where(Job.id == job_id)
        ).one()
    return row.timer_at, row.timer_armed_at, row.match_round


@pytest.mark.stack_env(GIGCO_MATCH_RETRY_BASE_SECONDS=str(MATCH_RETRY_SECONDS))
def test_a_silent_beat_is_down_after_three_intervals_and_no_worker_is_blamed(
    split: Stack, report: Callable[[str], None]
) -> None:
    stack = split
    healthy = _poll(
        stack,
        lambda v: v.status == 200 and v.body["beat"]["last_sweep_at"] is not None,
        timeout=PATIENCE,
        what="/healthz 200 with a sweep sent",
    )[-1]
    client = stack.client
    consumer = client.call("POST", "/v1/consumers", body=consumer_body()).body
    beat = stack.topology.procs["beat"]
    os.killpg(beat.pid, signal.SIGSTOP)
    try:
        stopped_at = time.time()
        # No worker signed up: once the consumer takes the offer, the job's first match round
        # finds nobody and sets its next MATCH_RETRY_SECONDS away, past the arming horizon:
        # only a sweep sends it.
        posted = client.call("POST", "/v1/jobs", token=consumer["token"], body=job_body())
        assert posted.status == 201, posted
        job_id = posted.body["id"]
        wait_for(
            lambda: (
                client.call("GET", f"/v1/jobs/{job_id}", token=consumer["token"]).body["status"]
                == "offered"
            ),
            timeout=PATIENCE,
            what="the job to be offered",
        )
        taken = client.call("POST", f"/v1/jobs/{job_id}/offer/accept", token=consumer["token"])
        assert taken.status == 200, taken
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
        # The job's next round waits on beat past the workers' bound: still beat's failure
        # alone, and no worker's probe fails (a restart of an idle worker would not help).
        timer_at = wait_for(
            lambda: (deadline := _deadline(stack, job_id))[2] >= 1 and deadline[0],
            timeout=PATIENCE,
            what="the job's next match round to be set",
        )
        late = _poll(
            stack,
            lambda v: v.checked_at > timer_at + dt.timedelta(seconds=STALL_SECONDS + 1),
            timeout=MATCH_RETRY_SECONDS + STALL_SECONDS + PATIENCE,
            what="the next round to wait past the workers' bound",
        )[-1]
        assert late.body["down"] == ["beat"], late.body
        assert _deadline(stack, job_id) == (timer_at, None, 1)  # no sweep armed it
        assert (_probe(stack, LIFECYCLE), _probe(stack, WEBHOOKS)) == (0, 0), PROBED
    finally:
        os.killpg(beat.pid, signal.SIGCONT)
    up = _poll(stack, _ok, timeout=PATIENCE, what="/healthz 200 again")[-1]
    assert dt.datetime.fromisoformat(up.body["beat"]["last_sweep_at"]) > last_sweep
    wait_for(
        lambda: _deadline(stack, job_id)[0] != timer_at,
        timeout=PATIENCE,
        what="the waiting round to run once beat is back",
    )
    report(
        f"[{stack.broker.kind}] beat frozen: /healthz 503 naming beat after {silent:.2f}s "
        f"without a sweep (bound {BEAT_BOUND:g}s), "
        f"{down.checked_at.timestamp() - stopped_at:.1f}s after SIGSTOP; a deadline waiting "
        f"{STALL_SECONDS + 1:g}s+ on it failed no worker's probe"
    )
