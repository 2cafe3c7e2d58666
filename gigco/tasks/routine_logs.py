"""Celery's own lines about beat's sweep are routine: DEBUG, so an idle sweep writes nothing
at INFO.

Beat logs "Sending due task" for every sweep, the worker "received" and "succeeded" (or
"Discarding revoked task" for one that expired while waiting, as a stopped ``gigco dev``
leaves them); with one-second sweeps that is three lines a second. They never carry news: the
sweep itself logs at INFO when it found or sent something (``gigco.tasks.sweeps.log_sweep``),
and the steps it sends log as every step does. A sweep's failure or retry keeps its level.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from gigco.tasks.names import SWEEP_TASK

BEAT_SENDING = "Scheduler: Sending due task %s (%s)"
# The logger of each routine line and the line's format string.
ROUTINE = {
    "celery.beat": BEAT_SENDING,
    "celery.worker.strategy": LOG_RECEIVED,
    "celery.app.trace": LOG_SUCCESS,
    "celery.worker.request": "Discarding revoked task: %s[%s]",
}


class SweepRoutine(logging.Filter):
    """Demotes a routine INFO line about the sweep to DEBUG (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, demoted when it is routine, if its logger shows its level."""
        if record.levelno != logging.INFO or not _about_the_sweep(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _about_the_sweep(record: logging.LogRecord) -> bool:
    if ROUTINE.get(record.name) != record.msg:
        return False
    args = record.args
    if isinstance(args, Mapping):  # the worker's lines: a dict of the task's facts
        return args.get("name") == SWEEP_TASK
    return isinstance(args, tuple) and SWEEP_TASK in args  # (entry, task) or (task, id)


def quiet_the_sweep() -> None:
    """Put ``SweepRoutine`` on the loggers of the routine lines (once each)."""
    for name in ROUTINE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SweepRoutine) for f in logger.filters):
            logger.addFilter(SweepRoutine())
