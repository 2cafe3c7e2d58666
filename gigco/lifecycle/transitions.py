"""The one way a job's status changes: the allowed moves, compare-and-set, history event.

``transition`` also writes what is due next (a ``Next``) into the job's deadline columns,
and ``dues_of`` reads them back as the ``Due`` a caller enqueues, so the two cannot
disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import clock
from gigco.db import UTCDateTime, built_once
from gigco.lifecycle.errors import Conflict, NotFound
from gigco.lifecycle.history import (
    EventSink,
    event_params,
    hand_over,
    insert_event,
    listening_columns,
    new_event,
    one_statement,
    sinks,
)
from gigco.lifecycle.schedule import STEP_FOR_STATUS, Next, Step
from gigco.models import Job, JobStatus
from gigco.models import JobStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.PRICED, S.CANCELLED}),
    S.PRICED: frozenset({S.OFFERED, S.CANCELLED}),
    S.OFFERED: frozenset({S.ACCEPTED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.WORKER_ASSIGNED, S.NO_WORKER, S.CANCELLED}),
    # Back to accepted: the worker withdrew, or (scheduled) did not come.
    S.WORKER_ASSIGNED: frozenset({S.SCHEDULED, S.ACCEPTED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.IN_PROGRESS, S.ACCEPTED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset({S.PAID, S.PAYMENT_FAILED}),
    S.PAYMENT_FAILED: frozenset({S.COMPLETED}),
    S.PAID: frozenset({S.REVIEW_PENDING}),
    S.REVIEW_PENDING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NO_WORKER: frozenset(),
}

TERMINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)

CANCELLABLE = frozenset(status for status, moves in TRANSITIONS.items() if S.CANCELLED in moves)


@dataclass(frozen=True)
class Due:
    """A step that is due on a job: now when ``at`` is None, else at ``at``."""

    step: Step
    job_id: int
    at: dt.datetime | None = None


def dues_of(job: Job | None) -> list[Due]:
    """What its deadline columns say is due on ``job``: its status's step, now or at a time."""
    step = STEP_FOR_STATUS.get(job.status) if job is not None else None
    if job is None or step is None:
        return []
    if job.step_due_at is not None:
        return [Due(step, job.id)]
    if job.timer_at is not None:
        return [Due(step, job.id, job.timer_at)]
    return []


def set_next(job: Job, then: Next, now: dt.datetime) -> list[Due]:
    """Write ``then`` into a loaded (locked) job's deadline columns; return what is due."""
    for column, value in then.columns(now).items():
        setattr(job, column, value)
    return dues_of(job)


class StatusConflict(Conflict):
    """The job is not in a status that allows the move; names the current status."""

    def __init__(self, job_id: int, current: JobStatus, wanted: str):
        super().__init__(
            f"Job {job_id} is {current.value}; {wanted} is not allowed in that status.",
            current_status=current.value,
        )
        self.current = current


# A guard a caller adds to a transition (``where``) compares against the transition's time as
# this parameter, so that the statement stays the same from call to call (see _statements).
AT_NOW = sa.bindparam("now", type_=UTCDateTime())


def transition(
    session: Session,
    job_id: int,
    from_: JobStatus,
    to: JobStatus,
    *,
    actor: str,
    then: Next,
    event: str | None = None,
    data: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    where: tuple[sa.ColumnElement[bool], ...] = (),
    where_params: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Job | None:
    """Move job ``job_id`` from ``from_`` to ``to`` if it is still there; write the event.

    One ``UPDATE … WHERE id = :id AND status = :from RETURNING`` that also takes the next
    event ``seq`` and writes ``then`` (what is due next) into the deadline columns; the
    caller returns ``dues_of(job)``. On PostgreSQL the event's INSERT and the sinks'
    questions (``gigco.lifecycle.history``) are the same statement (one round trip).
    ``where`` holds extra guards built once at import (they key a statement cache),
    comparing times with ``AT_NOW`` or with bind parameters whose values ``where_params``
    holds. Returns the updated job, or None when the job was elsewhere (a lost race): a
    task then does nothing, an action raises with ``require_transition``.
    """
    if to not in TRANSITIONS[from_]:
        raise ValueError(f"{from_} -> {to} is not in the transitions table")
    if then.is_due and to not in STEP_FOR_STATUS:
        raise ValueError(f"no step acts on a {to} job, so none can be due")
    now = now or clock.now()
    values = {**then.columns(now), **(values or {})}
    registered = sinks()
    update, combined = _statements(tuple(values), tuple(where), registered)
    params = {
        "job_id": job_id,
        "from_status": from_,
        "to_status": to,
        "now": now,
        **{f"set_{key}": value for key, value in values.items()},
        **(where_params or {}),
    }
    written = new_event(
        job_id,
        event or to.value,
        actor=actor,
        data=data,
        from_status=from_,
        to_status=to,
        now=now,
    )
    if one_statement(session):
        row = session.execute(
            combined, params | event_params(written), execution_options={"populate_existing": True}
        ).one_or_none()
        if row is None:
            return None
        job: Job = row[0]
        written.seq = job.event_seq
        hand_over(session, written, registered, row[1:])
        return job
    moved: Job | None = session.scalars(update, params).one_or_none()
    if moved is None:
        return None
    written.seq = moved.event_seq
    session.add(written)
    hand_over(session, written, registered)
    return moved


@built_once
def _statements(
    keys: tuple[str, ...],
    where: tuple[sa.ColumnElement[bool], ...],
    registered: tuple[EventSink, ...],
) -> tuple[Any, Any]:
    """The compare-and-set for columns ``keys`` and guards ``where``, built once: as an
    ``UPDATE … RETURNING`` job, and (PostgreSQL) with its event INSERT and the sinks'
    questions in one statement. Building these is most of a transition's Python time."""
    c = Job.__table__.c
    update = (
        sa.update(Job)
        .where(
            Job.id == sa.bindparam("job_id"),
            Job.status == sa.bindparam("from_status", type_=c.status.type),
            *where,
        )
        .values(
            status=sa.bindparam("to_status", type_=c.status.type),
            event_seq=Job.event_seq + 1,
            updated_at=sa.bindparam("now", type_=c.updated_at.type),
            **{key: sa.bindparam(f"set_{key}", type_=c[key].type) for key in keys},
        )
        .execution_options(synchronize_session=False)
    )
    moved = update.returning(*c).cte("moved")
    combined = sa.select(sa.orm.aliased(Job, moved), *listening_columns(registered)).add_cte(
        insert_event(moved.c.id, moved.c.event_seq)
    )
    orm_update = update.returning(Job).execution_options(populate_existing=True)
    return orm_update, combined


def require_transition(
    session: Session,
    job_id: int,
    from_: JobStatus,
    to: JobStatus,
    *,
    wanted: str,
    **kwargs: Any,
) -> Job:
    """Like ``transition`` but raise StatusConflict, naming the current status, on a lost race."""
    job = transition(session, job_id, from_, to, **kwargs)
    if job is None:
        current = session.scalar(sa.select(Job.status).where(Job.id == job_id))
        if current is None:
            raise NotFound(f"Job {job_id} not found.")
        raise StatusConflict(job_id, current, wanted)
    return job
