"""What a sweep claimed but could not publish: released, so the next sweep claims it again.

A sweep claims deadlines (``timer_armed_at``), stuck steps (``step_due_at``) and overdue
webhook messages (``next_attempt_at``) in one transaction and publishes after it commits.
A publish the broker refuses would otherwise leave its claim standing, and the claimed
thing would wait a horizon plus the grace (a deadline) or a grace (a step, a message) before
a sweep looked at it again. Each release is a compare-and-set on the claim this sweep wrote:
a step that ran meanwhile, or another sweep's newer claim, is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.timers import late_claim
from gigco.models import Job, WebhookDelivery


def release(
    session: Session,
    *,
    timers: Iterable[int] = (),
    steps: Iterable[int] = (),
    deliveries: Iterable[int] = (),
    claimed_at: dt.datetime,
    grace_seconds: float,
) -> int:
    """Release the claims a sweep wrote at ``claimed_at`` on the deadlines of jobs ``timers``,
    the stuck steps of jobs ``steps`` and the webhook messages ``deliveries``; returns how
    many it released."""
    overdue = claimed_at - dt.timedelta(seconds=grace_seconds)
    claims = [claimed_at, late_claim(session, claimed_at, grace_seconds)]  # on time, late
    statements = []
    if ids := list(timers):
        statements.append(
            sa.update(Job)
            .where(
                Job.id.in_(ids),
                Job.timer_armed_at.in_(claims),
            )
            .values(timer_armed_at=None)
        )
    if ids := list(steps):
        statements.append(
            sa.update(Job)
            .where(Job.id.in_(ids), Job.step_due_at == claimed_at)
            .values(step_due_at=overdue)
        )
    if ids := list(deliveries):
        at = WebhookDelivery.next_attempt_at
        statements.append(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), at == claimed_at)
            .values(next_attempt_at=overdue)
        )
    released = 0
    for statement in statements:
        result = session.execute(statement.execution_options(synchronize_session=False))
        released += int(getattr(result, "rowcount", 0) or 0)
    return released
