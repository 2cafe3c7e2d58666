"""Advancing a test clock: its jobs' deadlines up to the new time, in due order."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from gigco.lifecycle import test_clocks
from gigco.models import TestClock
from gigco.tasks.app import app
from gigco.tasks.base import LifecycleTask
from gigco.tasks.names import ADVANCE_TASK
from gigco.tasks.runtime import runtime

log = logging.getLogger("gigco.test_clocks")


def advance(task: LifecycleTask, clock_id: int, *, budget: int) -> bool:
    """Move clock ``clock_id`` toward its ``advance_to``, running at most ``budget`` steps;
    True once it stands there (``ready``), False when the budget ran out first.

    The clock steps from deadline to deadline: at each it stands at that deadline and every
    step due then runs at that time (with its follow-ups due at once, as a worker would),
    so a step sees the time its deadline was, as under real time; a step that fails is
    not retried at the same time in this run.
    """
    rt = runtime()
    ran: set[int] = set()
    while budget > 0:
        with rt.sessions() as session, session.begin():
            clock = session.scalar(
                sa.select(TestClock).where(TestClock.id == clock_id).with_for_update()
            )
            if clock is None or clock.advance_to is None or clock.deleted_at is not None:
                return True
            due = test_clocks.due_at(session, clock_id, clock.frozen_time, skip=ran, limit=budget)
            if not due:
                nxt = test_clocks.next_deadline(
                    session, clock_id, clock.frozen_time, clock.advance_to
                )
                if nxt is None:
                    clock.frozen_time, clock.advance_to = clock.advance_to, None
                    return True
                clock.frozen_time = nxt
                ran.clear()
                continue
        for step, job_id in due:
            ran.add(job_id)
            budget -= 1
            try:
                task.run_step(step, job_id)
            except Exception:
                log.exception("a test clock's step failed", extra={"job_id": job_id})
    return False


@app.task(bind=True, base=LifecycleTask, name=ADVANCE_TASK)
def advance_test_clock(self: LifecycleTask, clock_id: int) -> bool:
    """Advance a test clock by at most GIGCO_SWEEP_BATCH steps, then send itself again for
    the rest: a clock with many jobs is bounded work per task, like a sweep's backlog."""
    done = advance(self, clock_id, budget=runtime().settings.sweep_batch)
    if not done:
        app.send_task(ADVANCE_TASK, args=[clock_id])
    return done
