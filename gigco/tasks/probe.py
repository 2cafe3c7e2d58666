"""Heartbeats for /healthz, the console and the worker's probe: a worker records when it
last finished a task, and its main process every few seconds that it is alive, with its
tasks in flight and its queues; beat records when it last sent a sweep. Written to the
database, so they work on any broker."""

from __future__ import annotations

import socket
import threading
from typing import Any

from celery.signals import (
    after_task_publish,
    beat_embedded_init,
    beat_init,
    task_postrun,
    worker_ready,
    worker_shutdown,
)
from celery.worker import state

from gigco import health
from gigco.tasks.names import SWEEP_TASK
from gigco.tasks.runtime import runtime

_stop = threading.Event()


def _ticks(name: str, queues: list[str]) -> None:
    # A thread, not the worker's timer: a slow database must not hold up the event loop.
    # The main process sees every pool's requests (prefork children included).
    while True:
        in_flight = len(state.active_requests)
        health.tick(runtime().sessions, name=name, in_flight=in_flight, queues=queues)
        if _stop.wait(health.WORKER_TICK_SECONDS):
            return


@worker_ready.connect
def _worker_started(sender: Any = None, **_: object) -> None:
    name = getattr(sender, "hostname", None) or f"celery@{socket.gethostname()}"
    health.record(runtime().sessions, kind="worker", name=name, started=True)
    try:
        queues = sorted(sender.app.amqp.queues.consume_from)
    except AttributeError:
        queues = []
    _stop.clear()
    threading.Thread(target=_ticks, args=(name, queues), name="gigco-tick", daemon=True).start()


@worker_shutdown.connect
def _worker_stopping(**_: object) -> None:
    _stop.set()


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
