"""Sweeps: queries over the deadline indexes that claim what is due. Cost follows the batch.

Each due thing is sent once, then again at most once per grace: a deadline is claimed
(``timer_armed_at``) when a sweep sends it and is not sent again until it could have been
lost (``lost_after``: its ETA and its sending both that long ago, and the job still has that
deadline). The sweep that re-sends it is the last one before the deadline is a grace late,
so a deadline whose message died with a worker fires within the grace of when it was due
(the spec's bound is one sweep interval plus the grace); a stuck step is claimed the same
way through ``step_due_at``. A sweep claims at most ``batch`` in all; the rest wait for the next.

Late work backs off: a deadline already a grace overdue when it is sent is claimed as of
``now`` plus how overdue it is (at most ``LATE_CLAIM_CAP`` graces), so a backlog that takes
longer than the grace to drain is re-sent at ever longer intervals, not every grace — each
re-send of a message still queued is work that delays the rest (the retry storm that turns a
slow drain into none). A deadline sent on time keeps the bound above.
Jobs on a test clock are left out (``REAL_TIME``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import ClaimedIds, UTCDateTime
from gigco.lifecycle.schedule import STEP_FOR_STATUS, Next
from gigco.lifecycle.transitions import Due
from gigco.models import Job, JobStatus

# Jobs on real time: a test clock's jobs are never swept (their clock's advance runs them),
# and the sweeps' partial indexes carry the same condition, so leaving them out costs nothing.
REAL_TIME = Job.test_clock_id.is_(None)

# A late deadline's re-sends back off up to this many graces apart (10 minutes by default).
LATE_CLAIM_CAP = 10


def late_claim(
    session: Session, now: dt.datetime, grace_seconds: float
) -> sa.ColumnElement[dt.datetime]:
    """The claim written on a late deadline: ``now`` plus how long past ``timer_at`` it is,
    at most ``LATE_CLAIM_CAP`` graces — the next re-send waits as long again (doubling its
    age each time)."""
    cap = dt.timedelta(seconds=grace_seconds * LATE_CLAIM_CAP)
    if session.get_bind().dialect.name == "postgresql":
        at = sa.literal(now, UTCDateTime())
        return sa.func.least(at + (at - Job.timer_at), sa.literal(now + cap, UTCDateTime()))
    # SQLite has no timestamp arithmetic: gigco.db registers the same rule as a function.
    return sa.func.gigco_late_claim(
        sa.literal(now, UTCDateTime()), Job.timer_at, cap.total_seconds(), type_=UTCDateTime()
    )


def _claim(
    session: Session,
    where: list[sa.ColumnElement[bool]],
    order: sa.orm.InstrumentedAttribute[dt.datetime | None],
    *,
    now: dt.datetime,
    limit: int,
    claim: sa.ColumnElement[dt.datetime] | None = None,
) -> list[sa.Row[int, JobStatus, dt.datetime | None]]:
    # On PostgreSQL SKIP LOCKED lets two sweepers share the work instead of both taking it.
    claimed = (
        sa.select(Job.id)
        .where(*where)
        .order_by(order)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(
        session.execute(
            sa.update(Job)
            .where(ClaimedIds(Job.id, claimed))
            .values(timer_armed_at=now if claim is None else claim)
            .returning(Job.id, Job.status, Job.timer_at)
            .execution_options(synchronize_session=False)
        ).all()
    )


def lost_after(grace_seconds: float, interval_seconds: float) -> float:
    """How long after its deadline and its sending a deadline's message is presumed lost: the
    grace less one sweep interval, so the sweep before it is a grace late re-sends it (never
    less than half the grace: a sweep slower than the grace must not re-send every time)."""
    return max(grace_seconds - interval_seconds, grace_seconds / 2)


def due_timers(
    session: Session,
    *,
    now: dt.datetime,
    horizon_seconds: float,
    grace_seconds: float,
    batch: int,
    interval_seconds: float = 0.0,
) -> list[Due]:
    """Claim up to ``batch`` deadlines due before ``now + horizon`` that no sweep has sent —
    those due within the grace first, so a backlog of overdue ones never holds up a fresh
    deadline — then, with what is left of the batch, those sent so long ago they could have
    been lost (``lost_after`` the grace and the sweeps' ``interval_seconds``). Overdue ones
    and re-sends are claimed with ``late_claim`` (their next re-send backs off).

    Reads ``ix_jobs_timer_unarmed`` and ``ix_jobs_timer_armed_at`` (both partial), so the
    cost follows the batch, not the backlog or the table.
    """
    until = now + dt.timedelta(seconds=horizon_seconds)
    overdue = now - dt.timedelta(seconds=grace_seconds)
    unarmed = [Job.timer_at.is_not(None), Job.timer_armed_at.is_(None), REAL_TIME]
    late = late_claim(session, now, grace_seconds)
    rows = _claim(
        session,
        [*unarmed, Job.timer_at > overdue, Job.timer_at <= until],
        Job.timer_at,
        now=now,
        limit=batch,
    )
    if len(rows) < batch:
        rows += _claim(
            session,
            [*unarmed, Job.timer_at <= overdue],
            Job.timer_at,
            now=now,
            limit=batch - len(rows),
            claim=late,
        )
    if len(rows) < batch:
        # Sent and due at least ``lost_after`` ago: its ETA passed and the step (which rewrites
        # timer_at and clears the claim) has not run, so the message may have died with a
        # worker. Re-sent by the last sweep before it is a grace late, once per that long.
        lost = now - dt.timedelta(seconds=lost_after(grace_seconds, interval_seconds))
        rows += _claim(
            session,
            [
                Job.timer_armed_at.is_not(None),
                REAL_TIME,
                Job.timer_armed_at <= lost,
                Job.timer_at <= lost,
            ],
            Job.timer_armed_at,
            now=now,
            limit=batch - len(rows),
            claim=late,
        )
    return [
        Due(STEP_FOR_STATUS[st], job_id, at) for job_id, st, at in rows if st in STEP_FOR_STATUS
    ]


def stuck_steps(
    session: Session, *, now: dt.datetime, grace_seconds: float, batch: int
) -> list[Due]:
    """Up to ``batch`` steps overdue by the grace; each is due now again (``Next.now()``), so
    its ``step_due_at`` restarts and it is re-kicked once per grace. Reads
    ``ix_jobs_step_due_at``."""
    if batch <= 0:
        return []
    overdue = (
        sa.select(Job.id)
        .where(
            Job.step_due_at.is_not(None),
            REAL_TIME,
            Job.step_due_at <= now - dt.timedelta(seconds=grace_seconds),
        )
        .order_by(Job.step_due_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        sa.update(Job)
        .where(ClaimedIds(Job.id, overdue))
        .values(Next.now().columns(now))
        .returning(Job.id, Job.status)
        .execution_options(synchronize_session=False)
    ).all()
    return [Due(STEP_FOR_STATUS[st], job_id) for job_id, st in rows if st in STEP_FOR_STATUS]
