"""The one way a job's status changes: the allowed moves, compare-and-set, history event.

``transition`` also writes what is due next (a ``Next``) into the job's deadline columns,
and ``dues_of`` reads them back as the ``Due`` a caller enqueues, so the two cannot
disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import UTCDateTime, built_once, utcnow
from gigco.lifecycle.errors import Conflict, NotFound
from gigco.lifecycle.schedule import STEP_FOR_STATUS, Next, Step
from gigco.models import Job, JobEvent, JobStatus, WebhookEndpoint
from gigco.models import JobStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.PRICED, S.CANCELLED}),
    S.PRICED: frozenset({S.OFFERED, S.CANCELLED}),
    S.OFFERED: frozenset({S.ACCEPTED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.WORKER_ASSIGNED, S.NO_WORKER, S.CANCELLED}),
    S.WORKER_ASSIGNED: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.IN_PROGRESS, S.CANCELLED}),
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

SYSTEM = "system"
OPERATOR = "operator"


def consumer_actor(consumer_id: int) -> str:
    """The actor string of a consumer."""
    return f"consumer:{consumer_id}"


def worker_actor(worker_id: int) -> str:
    """The actor string of a worker."""
    return f"worker:{worker_id}"


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
    now: dt.datetime | None = None,
) -> Job | None:
    """Move job ``job_id`` from ``from_`` to ``to`` if it is still there; write the event.

    One ``UPDATE … WHERE id = :id AND status = :from RETURNING`` that also takes the next
    event ``seq`` and writes ``then`` (what is due next) into the deadline columns; the
    caller returns ``dues_of(job)``. On PostgreSQL the event's INSERT and the check whether
    any webhook endpoint listens are the same statement (one round trip). ``where`` holds
    extra guards built once at import (they key a statement cache), comparing times with
    ``AT_NOW``. Returns the updated job, or None when the job was elsewhere (a lost race):
    a task then does nothing, an action raises with ``require_transition``.
    """
    if to not in TRANSITIONS[from_]:
        raise ValueError(f"{from_} -> {to} is not in the transitions table")
    if then.is_due and to not in STEP_FOR_STATUS:
        raise ValueError(f"no step acts on a {to} job, so none can be due")
    now = now or utcnow()
    values = {**then.columns(now), **(values or {})}
    update, select = _statements(tuple(values), tuple(where))
    params = {
        "job_id": job_id,
        "from_status": from_,
        "to_status": to,
        "now": now,
        **{f"set_{key}": value for key, value in values.items()},
    }
    written = JobEvent(
        job_id=job_id,
        type=event or to.value,
        from_status=from_,
        to_status=to,
        actor=actor,
        data=data or {},
        created_at=now,
    )
    if not _one_statement(session):
        job: Job | None = session.scalars(update, params).one_or_none()
        if job is None:
            return None
        written.seq = job.event_seq
        session.add(written)
        write_outbox(session, job_id, written)
        return job
    row = session.execute(
        select, params | _event_params(written), execution_options={"populate_existing": True}
    ).one_or_none()
    if row is None:
        return None
    moved: Job = row[0]
    listened = row[1]
    written.seq = moved.event_seq
    if listened:
        write_outbox(session, job_id, written)
    return moved


# Whether any webhook endpoint is enabled: folded into each event's statement, so that nobody
# listening costs no round trip; when someone does, the outbox looks up who (webhooks.outbox).
_LISTENED = sa.exists().where(WebhookEndpoint.enabled).label("listened")

_EVENT_COLUMNS = ("job_id", "seq", "type", "from_status", "to_status", "actor", "data")


def _one_statement(session: Session) -> bool:
    """PostgreSQL takes an UPDATE and an INSERT in one statement (data-modifying CTEs)."""
    return session.get_bind().dialect.name == "postgresql"


def _event_params(event: JobEvent) -> dict[str, Any]:
    return {
        "event_type": event.type,
        "event_from": event.from_status,
        "event_to": event.to_status,
        "actor": event.actor,
        "data": event.data,
        "now": event.created_at,
    }


def _insert_event(job_id: sa.ColumnElement[int], seq: sa.ColumnElement[int]) -> sa.CTE:
    """INSERT the event (``_event_params``) of the job and seq selected from a CTE, as a CTE."""
    c = JobEvent.__table__.c
    source = sa.select(
        job_id,
        seq,
        sa.bindparam("event_type", type_=c.type.type),
        sa.bindparam("event_from", type_=c.from_status.type),
        sa.bindparam("event_to", type_=c.to_status.type),
        sa.bindparam("actor", type_=c.actor.type),
        sa.bindparam("data", type_=c.data.type),
        sa.bindparam("now", type_=c.created_at.type),
    )
    columns = [*_EVENT_COLUMNS, "created_at"]
    return sa.insert(JobEvent).from_select(columns, source).cte("written")


@built_once
def _statements(
    keys: tuple[str, ...], where: tuple[sa.ColumnElement[bool], ...]
) -> tuple[Any, Any]:
    """The compare-and-set for columns ``keys`` and guards ``where``, built once: as an
    ``UPDATE … RETURNING`` job, and (PostgreSQL) with its event INSERT and the listeners'
    check in one statement. Building these is most of a transition's Python time."""
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
    select = sa.select(sa.orm.aliased(Job, moved), _LISTENED).add_cte(
        _insert_event(moved.c.id, moved.c.event_seq)
    )
    orm_update = update.returning(Job).execution_options(populate_existing=True)
    return orm_update, select


@built_once
def _bump_statements() -> tuple[Any, Any]:
    """Taking a job's next event seq: alone, and (PostgreSQL) with the event's INSERT and
    the listeners' check."""
    bump = (
        sa.update(Job)
        .where(Job.id == sa.bindparam("job_id"))
        .values(event_seq=Job.event_seq + 1)
        .execution_options(synchronize_session=False)
    )
    bumped = bump.returning(Job.id, Job.event_seq).cte("bumped")
    select = sa.select(bumped.c.event_seq, _LISTENED).add_cte(
        _insert_event(bumped.c.id, bumped.c.event_seq)
    )
    return bump.returning(Job.event_seq), select


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


def record_event(
    session: Session,
    job_id: int,
    type_: str,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> JobEvent:
    """Write a history event that changes no status, taking the job's next ``seq``."""
    event = JobEvent(
        job_id=job_id,
        type=type_,
        from_status=None,
        to_status=None,
        actor=actor,
        data=data or {},
        created_at=now or utcnow(),
    )
    bump, select = _bump_statements()
    if not _one_statement(session):
        event.seq = session.execute(bump, {"job_id": job_id}).scalar_one()
        session.add(event)
        write_outbox(session, job_id, event)
        return event
    event.seq, listened = session.execute(select, {"job_id": job_id} | _event_params(event)).one()
    if listened:
        write_outbox(session, job_id, event)
    return event


def add_event(session: Session, event: JobEvent) -> None:
    """Write ``event``, whose ``seq`` is already taken (a new job's first), and its outbox."""
    if not _one_statement(session):
        session.add(event)
        write_outbox(session, event.job_id, event)
        return
    params = {"job_id": event.job_id, "seq": event.seq} | _event_params(event)
    if session.execute(_add_event_statement(), params).scalar_one():
        write_outbox(session, event.job_id, event)


@built_once
def _add_event_statement() -> sa.Select[Any]:
    """An event's INSERT and the listeners' check, in one statement."""
    seq = sa.bindparam("seq", type_=sa.Integer())
    job_id = sa.bindparam("job_id", type_=sa.Integer())
    return sa.select(_LISTENED).add_cte(_insert_event(job_id, seq))


def write_outbox(session: Session, job_id: int, event: JobEvent) -> None:
    """Webhook deliveries of ``event``, in its transaction (gigco.lifecycle.webhooks)."""
    # Imported here: webhooks → projection → access, which imports this module.
    from gigco.lifecycle import webhooks

    webhooks.write_outbox(session, job_id, event)


_LOCKED = "gigco_locked_jobs"


def lock_job(session: Session, job_id: int) -> Job | None:
    """Re-read job ``job_id`` under a row lock (PostgreSQL), or None if it is gone.

    Once per transaction: while the lock is held nobody else can change the row, so a
    second call returns the loaded job without another round trip.
    """
    owner, locked = session.info.get(_LOCKED, (None, {}))
    if owner is not None and owner is session.get_transaction() and job_id in locked:
        known: Job = locked[job_id]
        if known in session:
            return known
    job = session.scalars(_lock_statement(), {"job_id": job_id}).first()
    if job is not None:
        remember_lock(session, job)
    return job


@built_once
def _lock_statement() -> sa.Select[Job]:
    """The job under its row lock, fresh. OF jobs: the job is loaded joined to its category,
    and a bare FOR UPDATE would lock the category's row as well, serialising every step and
    every new job of a category."""
    return (
        sa.select(Job)
        .where(Job.id == sa.bindparam("job_id"))
        .with_for_update(of=Job)
        .execution_options(populate_existing=True)
    )


def remember_lock(session: Session, job: Job) -> None:
    """Note that ``job`` was just read under its row lock in this transaction (``lock_job``
    then returns it without another round trip)."""
    owner, locked = session.info.get(_LOCKED, (None, {}))
    transaction = session.get_transaction()
    if owner is not transaction:
        locked = {}
    # Held here, not only in the session's weak identity map: a caller that let go of the
    # job would otherwise make the next call load it again.
    locked[job.id] = job
    session.info[_LOCKED] = (transaction, locked)
