"""Heartbeats for /healthz and the worker's probe: a worker records when it last finished a
task, beat when it last sent a sweep. Written to the database, so they work on any broker."""

from __future__ import annotations

import socket
from typing import Any

from celery.signals import (
    after_task_publish,
    beat_embedded_init,
    beat_init,
    task_postrun,
    worker_ready,
)

from gigco import health
from gigco.tasks.names import SWEEP_TASK
from gigco.tasks.runtime import runtime


@worker_ready.connect
def _worker_started(sender: Any = None, **_: object) -> None:
    name = getattr(sender, "hostname", None) or f"celery@{socket.gethostname()}"
    health.record(runtime().sessions, kind="worker", name=name, started=True)


@task_postrun.connect
def _task_finished(sender: Any = None, **_: object) -> None:
    name = getattr(getattr(sender, "request", None), "hostname", None)
    if name:
        health.record(runtime().sessions, kind="worker", name=name)


@beat_init.connect
@beat_embedded_init.connect
def _beat_started(**_: object) -> None:
    name = health.beat_row(socket.gethostname())
    health.record(runtime().sessions, kind="beat", name=name, started=True)


@after_task_publish.connect
def _sweep_sent(sender: Any = None, **_: object) -> None:
    if sender == SWEEP_TASK:  # only beat sends sweeps
        name = health.beat_row(socket.gethostname())
        health.record(runtime().sessions, kind="beat", name=name)
