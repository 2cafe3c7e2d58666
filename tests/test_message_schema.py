"""Task messages carry their schema: the live worker runs the previous release's (no header)
and sends one of an unknown schema back to the queue instead of acknowledging it away."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker

from gigco.lifecycle.schedule import Step
from gigco.models import Job, JobStatus
from gigco.tasks import app
from gigco.tasks.names import step_task_name
from gigco.tasks.schema import CURRENT, DEFER_SECONDS, HEADER
from tests import factories as f
from tests.harness.env import redis_url
from tests.harness.polling import wait_for


def _draft(sessions: sessionmaker[Session]) -> int:
    """A draft job no sweep will price (no step is due on it)."""
    with sessions.begin() as session:
        return f.job(session, status=JobStatus.DRAFT, step_due_at=None).id


def _status(sessions: sessionmaker[Session], job_id: int) -> JobStatus:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status


def _held(job_id: int, task: str = step_task_name(Step.PRICE)) -> list[dict[str, Any]]:
    """The ``task`` messages for ``job_id`` the worker holds unacknowledged (Redis's
    ``unacked``: an ETA message stays there until it runs)."""
    found = []
    for raw in redis.Redis.from_url(redis_url()).hvals("unacked"):
        message = json.loads(raw)[0]
        headers = message["headers"]
        if headers.get("task") == task:
            args = json.loads(base64.b64decode(message["body"]))[0]
            if args == [job_id]:
                found.append(headers)
    return found


def test_a_message_of_an_unknown_schema_goes_back_to_the_queue_and_runs_nowhere(
    live_worker: subprocess.Popen[bytes], sessions: sessionmaker[Session], committed: None
) -> None:
    job_id = _draft(sessions)
    sent = app.send_task(step_task_name(Step.PRICE), args=[job_id], headers={HEADER: 99})
    # Sent again under a new id with the schema it came with, due DEFER_SECONDS later.
    again = wait_for(
        lambda: [h for h in _held(job_id) if h["id"] != sent.id],
        timeout=10,
        what="the deferred message back in the queue",
    )
    assert [(h[HEADER], h["eta"] is not None) for h in again] == [(99, True)]
    assert DEFER_SECONDS >= 10  # the worker does not spin on it
    assert _status(sessions, job_id) == JobStatus.DRAFT


def test_a_message_for_a_task_this_worker_does_not_know_goes_back_to_the_queue(
    live_worker: subprocess.Popen[bytes], sessions: sessionmaker[Session], committed: None
) -> None:
    job_id = _draft(sessions)
    renamed = f"{step_task_name(Step.PRICE)}_v2"  # a newer release's name for the step
    sent = app.send_task(renamed, args=[job_id])
    again = wait_for(
        lambda: [h for h in _held(job_id, renamed) if h["id"] != sent.id],
        timeout=10,
        what="the unknown task's message back in the queue",
    )
    assert [(h[HEADER], h["eta"] is not None) for h in again] == [(CURRENT, True)]
    assert _status(sessions, job_id) == JobStatus.DRAFT


def test_the_previous_releases_message_without_a_schema_runs(
    live_worker: subprocess.Popen[bytes], sessions: sessionmaker[Session], committed: None
) -> None:
    job_id = _draft(sessions)
    # 0.1.0 sent no header (None here: the stamp only fills in a missing one).
    app.send_task(step_task_name(Step.PRICE), args=[job_id], headers={HEADER: None})
    wait_for(
        lambda: _status(sessions, job_id) == JobStatus.OFFERED,
        timeout=10,
        what="the job priced and offered",
    )


def test_every_message_this_release_sends_carries_its_schema(
    live_worker: subprocess.Popen[bytes],
) -> None:
    queue = "gigco_schema_probe"  # a queue no worker consumes
    client = redis.Redis.from_url(redis_url())
    try:
        app.send_task(step_task_name(Step.PRICE), args=[0], queue=queue)
        raw = wait_for(lambda: client.lindex(queue, 0), timeout=5, what="the probe message")
        assert json.loads(raw)["headers"][HEADER] == CURRENT
    finally:
        client.delete(queue)
