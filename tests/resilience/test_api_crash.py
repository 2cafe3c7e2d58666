"""The API killed while clients POST /v1/jobs with an Idempotency-Key: one job per key."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence

import pytest
import sqlalchemy as sa

from tests.harness.polling import wait_for
from tests.resilience.brokers import RedisBroker
from tests.resilience.fleet import Fleet
from tests.resilience.invariants import recovery, step_timings, violations
from tests.resilience.stack import Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

# The API must hang on the paused Redis (not give up after its broker timeout) for the kills
# below to cut requests off between the commit and the answer.
pytestmark = [pytest.mark.timeout(300), pytest.mark.stack_env(GIGCO_BROKER_TIMEOUT_SECONDS="120")]
INSERT_KEY = "INSERT INTO idempotency_keys"


def jobs_by_consumer(engine: sa.Engine) -> dict[int, list[int]]:
    """Committed job ids per consumer."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT consumer_id, array_agg(id ORDER BY id) FROM jobs GROUP BY consumer_id")
        ).all()
    return {consumer_id: list(ids) for consumer_id, ids in rows}


def committed_unanswered(stack: Stack, fleet: Fleet, batch: Sequence[int]) -> dict[int, int]:
    """Fleet index -> job id, for jobs already committed whose client has no answer yet."""
    committed = jobs_by_consumer(stack.engine)
    return {
        i: committed[fleet.consumers[i].id][0]
        for i in batch
        if fleet.consumers[i].id in committed and i not in fleet.post_answers
    }


def sessions_waiting(engine: sa.Engine, *, on_lock: bool = True) -> list[tuple[str, ...]]:
    """Other sessions of the database (only those waiting for a lock if ``on_lock``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT wait_event_type, wait_event, state, left(query, 80) "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() "
                "AND (wait_event_type = 'Lock' OR NOT :on_lock)"
            ),
            {"on_lock": on_lock},
        ).all()
    return [tuple(str(v) for v in row) for row in rows]


def test_posts_cut_off_by_killed_api_processes_end_with_exactly_one_job_each(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet = stack.fleet()
    assert isinstance(stack.broker, RedisBroker)
    broker = stack.broker.server.client()
    after_commit, in_transaction = range(0, 12), range(12, 24)

    # 1. Cut off after the commit: Redis refuses writes for a moment, so each gunicorn worker
    #    commits a job and then hangs sending its price_job; SIGKILL those workers (the
    #    master forks new ones). The response is lost, the job is not.
    broker.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # lifted below
    try:
        fleet.start(after_commit)
        held = wait_for(
            lambda: len(c := committed_unanswered(stack, fleet, after_commit)) >= 3 and c,
            timeout=30,
            what="gunicorn's workers to commit jobs and hang before answering",
        )
        first_kill_at = time.time()
        for pid in stack.topology.children("api"):
            os.kill(pid, signal.SIGKILL)
    finally:
        broker.execute_command("CLIENT", "UNPAUSE")
    unpaused_at = time.time()
    wait_for(
        lambda: all(i in fleet.post_answers for i in after_commit),
        timeout=60,
        what="every client of the first batch to get an answer",
    )

    # 2. Cut off inside the transaction: a lock holds each POST between inserting the job and
    #    its idempotency key; SIGKILL gunicorn's whole process group, master included, then
    #    start it again. The killed transactions roll back; the retries create the jobs.
    with stack.engine.connect() as conn, conn.begin():
        conn.execute(sa.text("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE"))
        fleet.start(in_transaction)
        try:
            blocked = wait_for(
                lambda: [w for w in sessions_waiting(stack.engine) if INSERT_KEY in w[-1]],
                timeout=30,
                what="POSTs blocked inside their transactions",
            )
        except AssertionError as timeout:
            sessions = sessions_waiting(stack.engine, on_lock=False)
            raise AssertionError(f"{timeout}; sessions: {sessions}") from None
        second_kill_at = stack.topology.kill("api")
    stack.topology.start_api()
    restarted_at = time.time()

    closed_at = fleet.wait_all_closed(timeout=120)
    fleet.stop()

    assert sorted(len(ids) for ids in jobs_by_consumer(stack.engine).values()) == [1] * fleet.size
    for i, job_id in held.items():
        answer = fleet.post_answers[i]
        assert (answer.status, answer.body["id"]) == (201, job_id)
        assert answer.headers.get("Idempotent-Replayed") == "true" and answer.attempt > 1
    for i in in_transaction:
        assert fleet.post_answers[i].status == 201
        assert "Idempotent-Replayed" not in fleet.post_answers[i].headers
    assert violations(stack.engine, fleet.job_ids.values()) == []
    assert stack.journal.server_errors() == []
    retried = sum(1 for a in fleet.post_answers.values() if a.attempt > 1)
    measured = recovery(
        step_timings(stack.engine, fleet.job_ids.values()),
        fault_at=first_kill_at,
        healthy_at=unpaused_at,
    )
    report(
        f"{fleet.size} jobs; {len(held)} POSTs killed after commit (answered later as replays of "
        f"the same job), {len(blocked)} killed inside their transaction (API down "
        f"{restarted_at - second_kill_at:.1f}s until healthy again); {retried} clients had to "
        f"retry; one job per consumer; {measured.summary()}; all closed "
        f"{closed_at - first_kill_at:.1f}s after the first kill"
    )
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS
