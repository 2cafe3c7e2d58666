"""The outbox: one delivery row per listening endpoint, written in the event's transaction.

A sink of the lifecycle's history (``install``); also the ``ping`` message, kicking new rows
after commit, and reading an endpoint's deliveries.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, SessionTransaction

from gigco.db import built_once, enqueue_after_commit
from gigco.lifecycle.history import EventSink, register_sink
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.projection import project_event, project_job
from gigco.models import (
    DeliveryStatus,
    Job,
    JobEvent,
    Opportunity,
    OpportunityStatus,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from gigco.webhooks.endpoints import endpoint_of

PING = "ping"

_sender: Callable[[list[int]], object] | None = None


def use_sender(sender: Callable[[list[int]], object]) -> None:
    """Register how new deliveries are kicked after commit (the task layer does, on import)."""
    global _sender
    _sender = sender


def install(sender: Callable[[list[int]], object]) -> None:
    """Write each history event's deliveries in its transaction (a sink of the lifecycle's
    history, asked in the event's own statement whether any endpoint is enabled) and kick
    them with ``sender`` after commit. Called where the app and the worker start."""
    use_sender(sender)
    register_sink(SINK)


# The deliveries a session's open transaction wrote, kicked together when it commits.
_KICKS = "gigco_webhook_kicks"


def kick_after_commit(session: Session, delivery_ids: Iterable[int]) -> None:
    """Send ``delivery_ids`` once ``session`` commits (else the sweep finds them).

    Every delivery a transaction writes (each of its events, each listening endpoint) goes
    to the sender in one call after the commit: one broker message per committing
    transaction on the lifecycle's path, not one per row.
    """
    ids = list(delivery_ids)
    if not ids or _sender is None:
        return
    transaction = session.get_transaction()
    kicks: tuple[SessionTransaction | None, list[int]] | None = session.info.get(_KICKS)
    if kicks is None or kicks[0] is not transaction:  # a rolled back transaction's are void
        pending: list[int] = []
        kicks = session.info[_KICKS] = (transaction, pending)
        sender = _sender

        def send() -> None:
            if session.info.get(_KICKS) is kicks:
                del session.info[_KICKS]
            sender(pending)

        enqueue_after_commit(session, send)
    kicks[1].extend(ids)


def _msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _audience(job_id: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """Endpoints whose owner may see job ``job_id`` now (access's visibility rule, inverted)."""
    holds_opportunity = sa.exists().where(
        Opportunity.job_id == job_id,
        Opportunity.worker_id == WebhookEndpoint.owner_id,
        Opportunity.status == OpportunityStatus.PENDING,
    )
    return sa.or_(
        WebhookEndpoint.owner_role == Role.OPERATOR,
        sa.and_(
            WebhookEndpoint.owner_role == Role.CONSUMER,
            WebhookEndpoint.owner_id == Job.consumer_id,
        ),
        sa.and_(
            WebhookEndpoint.owner_role == Role.WORKER,
            sa.or_(WebhookEndpoint.owner_id == Job.worker_id, holds_opportunity),
        ),
    )


@built_once
def _statements() -> tuple[Any, Any]:
    """Who listens to job ``:job_id`` now, and the deliveries' INSERT: built once (building
    them per event was most of the outbox's CPU)."""
    job_id = sa.bindparam("job_id", type_=sa.BigInteger())
    listeners = (
        sa.select(
            WebhookEndpoint.id,
            WebhookEndpoint.owner_role,
            WebhookEndpoint.owner_id,
            WebhookEndpoint.event_types,
        )
        .join(Job, Job.id == job_id)
        .where(WebhookEndpoint.enabled, _audience(job_id))
        .order_by(WebhookEndpoint.id)
    )
    table = cast(sa.Table, WebhookDelivery.__table__)
    insert = sa.insert(table).returning(table.c.id)
    return listeners, insert


def message(event_type: str, timestamp: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
    """A webhook body: ``{type, timestamp, data}``."""
    return {"type": event_type, "timestamp": timestamp.isoformat(), "data": data}


def write_outbox(session: Session, job_id: int, event: JobEvent) -> list[int]:
    """Write one delivery per enabled endpoint that may see the job and wants ``event``.

    Called where the history event is written, in its transaction (one query when nobody
    listens); each payload is built only through the projection, for the owner's role (once
    per owner, however many endpoints it has).
    """
    event_type = f"job.{event.type}"
    listeners, insert = _statements()
    endpoints = [
        e
        for e in session.execute(listeners, {"job_id": job_id})
        if e.event_types is None or event_type in e.event_types
    ]
    if not endpoints:
        return []
    job = session.get(Job, job_id)
    assert job is not None
    views: dict[tuple[Role, int | None], dict[str, Any]] = {}
    for endpoint in endpoints:
        owner = (endpoint.owner_role, endpoint.owner_id)
        if owner not in views:
            viewer = Principal(*owner)
            views[owner] = {
                "job_id": job.id,
                "seq": event.seq,
                "event": project_event(event, job, viewer),
                "job": project_job(job, viewer),
            }
    rows = [
        {
            "endpoint_id": endpoint.id,
            "job_id": job.id,
            "seq": event.seq,
            "msg_id": _msg_id(),
            "event_type": event_type,
            "payload": message(
                event_type, event.created_at, views[(endpoint.owner_role, endpoint.owner_id)]
            ),
            "status": DeliveryStatus.PENDING,
            "tries": 0,
            "next_attempt_at": event.created_at,
            "created_at": event.created_at,
        }
        for endpoint in endpoints
    ]
    ids = list(session.scalars(insert, rows))
    kick_after_commit(session, ids)
    return ids


def ping(session: Session, who: Principal, endpoint_id: int, *, now: dt.datetime) -> int:
    """Queue a ``ping`` message to the caller's endpoint; returns the delivery id."""
    endpoint = endpoint_of(session, who, endpoint_id)
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        msg_id=_msg_id(),
        event_type=PING,
        payload=message(PING, now, {"endpoint_id": endpoint.id}),
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    kick_after_commit(session, [delivery.id])
    return delivery.id


def deliveries_of(
    session: Session, who: Principal, endpoint_id: int, *, limit: int = 100
) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first."""
    endpoint = endpoint_of(session, who, endpoint_id)
    stmt = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def attempts_of(session: Session, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of each delivery, oldest first."""
    found: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        stmt = (
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.id)
        )
        for attempt in session.scalars(stmt):
            found[attempt.delivery_id].append(attempt)
    return found


# Whether any endpoint is enabled is folded into each event's statement, so that nobody
# listening costs no round trip; when someone does, ``write_outbox`` looks up who.
SINK = EventSink("webhooks", write_outbox, listening=sa.exists().where(WebhookEndpoint.enabled))
