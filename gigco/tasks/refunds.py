"""Refunds of resolved disputes: claim and commit, the gateway's call, record anew."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from gigco import clock
from gigco.db import enqueue_after_commit
from gigco.lifecycle import disputes, test_clocks
from gigco.lifecycle.context import StepContext
from gigco.tasks.app import app
from gigco.tasks.base import DurableTask
from gigco.tasks.dispatch import published
from gigco.tasks.names import REFUND_TASK
from gigco.tasks.runtime import runtime


@app.task(bind=True, base=DurableTask, name=REFUND_TASK)
def take_refund(self: DurableTask, dispute_id: int) -> bool:
    """Take a resolved dispute's pending refund through the gateway, once (idempotent).

    The task's id names the claim: Celery's retry of this task takes it over at once."""
    rt = runtime()
    with rt.sessions() as session, session.begin():
        ctx = _context(session, dispute_id)
        claim = disputes.claim_refund(session, dispute_id, ctx, token=self.request.id)
    if claim is None:
        return False
    refund_id = disputes.refund_at_gateway(rt.gateway, claim)
    if refund_id is None:
        return False  # due again when the claim's lease ends; the sweep re-sends it
    with rt.sessions() as session, session.begin():
        return disputes.record_refund(session, claim, refund_id, _context(session, dispute_id))


def _context(session: Session, dispute_id: int) -> StepContext:
    """The context a dispute's refund runs in: its job's test clock's time when the job runs
    on one (asked only with GIGCO_TEST_CLOCKS=1), as every step of the job; else the
    database's."""
    rt = runtime()
    clocked = test_clocks.dispute_time(session, dispute_id) if rt.settings.test_clocks else None
    now = clocked if clocked is not None else clock.now()
    return StepContext(settings=rt.settings, gateway=rt.gateway, now=now)


def send_refunds(dispute_ids: Iterable[int]) -> int:
    """A ``take_refund`` task per dispute; returns how many were sent. A failed publish is
    skipped (counted); the refund stays due, so the next sweep sends it again."""
    return sum(published(REFUND_TASK, [dispute_id], queue=None) for dispute_id in dispute_ids)


def send_refund_after_commit(session: Session, dispute_id: int) -> None:
    """Send the dispute's refund task once ``session`` commits."""
    enqueue_after_commit(session, lambda: send_refunds([dispute_id]))
