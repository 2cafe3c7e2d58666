"""Celery's routine lines about the sweep are DEBUG; every other task's stay INFO."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from celery.app.trace import LOG_FAILURE, LOG_RECEIVED, LOG_SUCCESS

from gigco.tasks.names import SWEEP_TASK
from gigco.tasks.routine_logs import BEAT_SENDING, quiet_the_sweep


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Kept]:
    handler, celery = Kept(), logging.getLogger("celery")
    celery.addHandler(handler)
    celery.setLevel(logging.INFO)
    quiet_the_sweep()
    yield handler
    celery.removeHandler(handler)
    celery.setLevel(logging.NOTSET)


def task(name: str) -> dict[str, object]:
    return {
        "id": "1",
        "name": name,
        "return_value": "{}",
        "runtime": 0.01,
        "exc": "boom",
        "description": "raised",
    }


def test_the_sweeps_routine_lines_are_dropped_at_info(kept: Kept) -> None:
    logging.getLogger("celery.beat").info(BEAT_SENDING, "sweep", SWEEP_TASK)
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, task(SWEEP_TASK))
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, task(SWEEP_TASK))
    assert kept.records == []


def test_they_show_as_debug_when_debug_is_on(kept: Kept) -> None:
    logging.getLogger("celery").setLevel(logging.DEBUG)
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, task(SWEEP_TASK))
    assert [r.levelname for r in kept.records] == ["DEBUG"]


def test_other_tasks_and_a_failed_sweep_keep_their_levels(kept: Kept) -> None:
    step = "gigco.tasks.steps.price_job"
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, task(step))
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, task(step))
    logging.getLogger("celery.app.trace").error(LOG_FAILURE, task(SWEEP_TASK))
    logging.getLogger("celery.beat").info(BEAT_SENDING, "other", "gigco.tasks.other")
    assert [r.levelname for r in kept.records] == ["INFO", "INFO", "ERROR", "INFO"]
