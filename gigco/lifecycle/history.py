"""A job's event history: writing an event, and handing it to the registered sinks.

Every event is written in the transaction of the change it records and handed there to each
registered ``EventSink`` (the webhook outbox is one, registered by ``gigco.webhooks`` where the
app and the worker start). The lifecycle knows no sink by name. On PostgreSQL the event's
INSERT rides in the statement of the change itself, and so does each sink's "is anyone
listening?" question: an event nobody listens to costs no round trip of its own. SQLite has
no data-modifying CTEs, so there the same function writes the event in a statement of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import clock
from gigco.db import built_once
from gigco.models import Job, JobEvent


@dataclass(frozen=True, eq=False)
class EventSink:
    """Takes each history event in its transaction: ``write(session, job_id, event)``.

    ``listening`` is a SQL condition asked in the event's own statement (PostgreSQL); when it
    is false the sink is not called (asked in a statement of its own where the dialect cannot
    fold it in). None: always called.
    """

    name: str
    write: Callable[[Session, int, JobEvent], object]
    listening: sa.ColumnElement[bool] | None = None


_sinks: tuple[EventSink, ...] = ()


def register_sink(sink: EventSink) -> None:
    """Hand every event written from now on to ``sink`` (replacing one of the same name)."""
    global _sinks
    _sinks = (*(s for s in _sinks if s.name != sink.name), sink)


def unregister_sink(name: str) -> None:
    """Stop handing events to the sink called ``name`` (if any)."""
    global _sinks
    _sinks = tuple(s for s in _sinks if s.name != name)


def sinks() -> tuple[EventSink, ...]:
    """The registered sinks; statements that ask them are built once per tuple."""
    return _sinks


def listening_columns(registered: tuple[EventSink, ...]) -> list[sa.ColumnElement[bool]]:
    """One boolean column per sink, for an event's statement to ask (``hand_over`` reads them)."""
    return [
        (sink.listening if sink.listening is not None else sa.true()).label(f"listening_{i}")
        for i, sink in enumerate(registered)
    ]


def hand_over(
    session: Session,
    event: JobEvent,
    registered: tuple[EventSink, ...],
    listening: Sequence[Any] | None = None,
) -> None:
    """Give ``event`` to each sink whose ``listening`` answered true; when the event's own
    statement did not ask (SQLite), ask here."""
    if listening is None and any(sink.listening is not None for sink in registered):
        listening = session.execute(_ask_statement(registered)).one()
    for i, sink in enumerate(registered):
        if listening is None or listening[i]:
            sink.write(session, event.job_id, event)


@built_once
def _ask_statement(registered: tuple[EventSink, ...]) -> Any:
    """The sinks' questions alone, where an event's statement cannot carry them."""
    return sa.select(*listening_columns(registered))


def one_statement(session: Session) -> bool:
    """PostgreSQL takes an UPDATE and an INSERT in one statement (data-modifying CTEs)."""
    return session.get_bind().dialect.name == "postgresql"


_EVENT_COLUMNS = ("job_id", "seq", "type", "from_status", "to_status", "actor", "data")


def event_params(event: JobEvent) -> dict[str, Any]:
    """The bind parameters of ``insert_event``'s values other than the job and its seq."""
    return {
        "event_type": event.type,
        "event_from": event.from_status,
        "event_to": event.to_status,
        "actor": event.actor,
        "data": event.data,
        "now": event.created_at,
    }


def insert_event(job_id: sa.ColumnElement[int], seq: sa.ColumnElement[int]) -> sa.CTE:
    """INSERT the event (``event_params``) of the job and seq selected from a CTE, as a CTE."""
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


def new_event(
    job_id: int,
    type_: str,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    from_status: Any = None,
    to_status: Any = None,
    now: dt.datetime | None = None,
) -> JobEvent:
    """An event not yet written (its ``seq`` is taken when it is)."""
    return JobEvent(
        job_id=job_id,
        type=type_,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        data=data or {},
        created_at=now or clock.now(),
    )


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
    event = new_event(job_id, type_, actor=actor, data=data, now=now)
    registered = sinks()
    bump, combined = _bump_statements(registered)
    if one_statement(session):
        event.seq, *listening = session.execute(
            combined, {"job_id": job_id} | event_params(event)
        ).one()
        hand_over(session, event, registered, listening)
    else:
        event.seq = session.execute(bump, {"job_id": job_id}).scalar_one()
        session.add(event)
        hand_over(session, event, registered)
    return event


@built_once
def _bump_statements(registered: tuple[EventSink, ...]) -> tuple[Any, Any]:
    """Taking a job's next event seq: alone, and (PostgreSQL) with the event's INSERT and
    the sinks' questions."""
    bump = (
        sa.update(Job)
        .where(Job.id == sa.bindparam("job_id"))
        .values(event_seq=Job.event_seq + 1)
        .execution_options(synchronize_session=False)
    )
    bumped = bump.returning(Job.id, Job.event_seq).cte("bumped")
    combined = sa.select(bumped.c.event_seq, *listening_columns(registered)).add_cte(
        insert_event(bumped.c.id, bumped.c.event_seq)
    )
    return bump.returning(Job.event_seq), combined


def add_event(session: Session, event: JobEvent) -> None:
    """Write ``event``, whose ``seq`` is already taken (a new job's first), and hand it over."""
    registered = sinks()
    if one_statement(session):
        params = {"job_id": event.job_id, "seq": event.seq} | event_params(event)
        _, *listening = session.execute(_add_statement(registered), params).one()
        hand_over(session, event, registered, listening)
    else:
        session.add(event)
        hand_over(session, event, registered)


@built_once
def _add_statement(registered: tuple[EventSink, ...]) -> Any:
    """An event's INSERT and the sinks' questions, in one statement."""
    seq = sa.bindparam("seq", type_=sa.Integer())
    job_id = sa.bindparam("job_id", type_=sa.Integer())
    return sa.select(sa.true().label("written"), *listening_columns(registered)).add_cte(
        insert_event(job_id, seq)
    )
