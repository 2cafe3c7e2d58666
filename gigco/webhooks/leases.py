"""A delivery's lease and attempt state machine: claim, record, retry, and the sweep's query.

A task claims a row (compare-and-set to ``sending`` with a lease in ``next_attempt_at``),
commits, sends (``transport``), and records the attempt in a new transaction. ``next_attempt_at``
is the only deadline: the sweep arms rows due soon and re-kicks rows overdue by the grace (a
lost task, an expired lease).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from gigco.config import Settings
from gigco.db import ClaimedIds, built_once
from gigco.lifecycle.errors import Conflict, NotFound
from gigco.lifecycle.notify import notify_consumer, notify_worker
from gigco.models import (
    DeliveryStatus,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from gigco.webhooks.endpoints import signing_secrets
from gigco.webhooks.outbox import kick_after_commit
from gigco.webhooks.retries import GONE, lease_seconds, retry_at
from gigco.webhooks.transport import Answer, Outgoing

log = logging.getLogger("gigco.webhooks")


def _earlier_open() -> sa.ColumnElement[bool]:
    """An earlier message of the same job to the same endpoint is still pending or sending."""
    earlier = aliased(WebhookDelivery)
    return sa.exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.job_id == WebhookDelivery.job_id,
        earlier.seq < WebhookDelivery.seq,
        earlier.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
    )


_NOW = sa.bindparam("now", type_=WebhookDelivery.next_attempt_at.type)


def _claimable() -> tuple[sa.ColumnElement[bool], ...]:
    """What ``claim`` requires of a row at bind parameter ``now``: open, due (or its lease
    expired), not held back."""
    return (
        WebhookDelivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
        WebhookDelivery.next_attempt_at <= _NOW,
        ~_earlier_open(),
    )


def _slot_free() -> sa.ColumnElement[bool]:
    """Fewer than ``:cap`` other messages to the same endpoint are being sent under a live
    lease: one slow endpoint holds at most ``webhook_endpoint_concurrency`` sending threads."""
    other = aliased(WebhookDelivery)
    sending = (
        sa.select(sa.func.count())
        .where(
            other.endpoint_id == WebhookDelivery.endpoint_id,
            other.status == DeliveryStatus.SENDING,
            other.next_attempt_at > _NOW,
            other.id != WebhookDelivery.id,
        )
        .scalar_subquery()
    )
    return sending < sa.bindparam("cap", type_=sa.Integer())


@built_once
def _claim_statements() -> tuple[sa.Select[int], sa.Select[WebhookEndpoint], sa.Update]:
    """``claimable``'s and ``claim``'s statements (each delivery runs them), built once."""
    claimable = sa.select(WebhookDelivery.id).where(
        WebhookDelivery.id.in_(sa.bindparam("ids", expanding=True)), *_claimable()
    )
    # The endpoint's row lock orders claims to one endpoint, so that the count of its
    # sending messages that the take reads next (a new snapshot) is exact.
    endpoint = (
        sa.select(WebhookEndpoint)
        .where(
            WebhookEndpoint.id
            == sa.select(WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == sa.bindparam("delivery_id"))
            .scalar_subquery()
        )
        .with_for_update(key_share=True)
    )
    take: sa.Update = (
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == sa.bindparam("delivery_id"), *_claimable(), _slot_free())
        .values(
            status=DeliveryStatus.SENDING, next_attempt_at=sa.bindparam("until", type_=_NOW.type)
        )
        .returning(
            WebhookDelivery.msg_id,
            WebhookDelivery.payload,
            WebhookDelivery.created_at,
        )
        .execution_options(synchronize_session=False)
    )
    return claimable, endpoint, take


def claimable(session: Session, delivery_ids: list[int], *, now: dt.datetime) -> list[int]:
    """Those of ``delivery_ids`` that ``claim`` would take now, in the order given.

    A delivery its own message already took (sending under a live lease, or finished) is
    left out, and so is one waiting for an earlier message of its job (that one's record
    kicks it): what the sweep re-kicks while the queue is long is mostly such rows.
    """
    if not delivery_ids:
        return []
    stmt, _, _ = _claim_statements()
    found = set(session.scalars(stmt, {"ids": delivery_ids, "now": now}))
    return [i for i in delivery_ids if i in found]


@dataclass(frozen=True)
class Claimed(Outgoing):
    """A delivery this task owns until ``lease_until``, with what it takes to send it."""

    delivery_id: int
    endpoint_id: int
    created_at: dt.datetime
    lease_until: dt.datetime


def claim(
    session: Session, delivery_id: int, *, settings: Settings, now: dt.datetime
) -> Claimed | None:
    """Take a due delivery for sending (compare-and-set to ``sending`` with a lease).

    None when it is not due, already taken or finished, waits for an earlier message of its
    job, or its endpoint already has ``webhook_endpoint_concurrency`` messages being sent
    (one of those, when recorded, kicks it). A delivery to a disabled endpoint fails here.
    """
    until = now + dt.timedelta(seconds=lease_seconds(settings))
    _, lock_endpoint, take = _claim_statements()
    endpoint = session.scalars(lock_endpoint, {"delivery_id": delivery_id}).first()
    if endpoint is None:
        return None  # the delivery is gone, with its endpoint
    params = {
        "delivery_id": delivery_id,
        "now": now,
        "until": until,
        "cap": settings.webhook_endpoint_concurrency,
    }
    row = session.execute(take, params).one_or_none()
    if row is None:
        return None
    if not endpoint.enabled:
        _finish(session, delivery_id, DeliveryStatus.FAILED, now)
        return None
    return Claimed(
        delivery_id=delivery_id,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        msg_id=row.msg_id,
        body=json.dumps(row.payload, separators=(",", ":"), sort_keys=True),
        secrets=tuple(signing_secrets(endpoint, now)),
        created_at=row.created_at,
        lease_until=until,
    )


def _finish(session: Session, delivery_id: int, status: DeliveryStatus, now: dt.datetime) -> None:
    session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(status=status, next_attempt_at=None, finished_at=now)
        .execution_options(synchronize_session=False)
    )


def _next_of(
    session: Session, endpoint_id: int, job_id: int | None, seq: int | None, now: dt.datetime
) -> list[int]:
    """What this attempt's end frees to go: the job's next pending message to the same
    endpoint, and the endpoint's oldest due message (one that waited for a sending slot)."""
    free: list[int] = []
    if job_id is not None:
        following = session.scalar(
            _next_statement(), {"endpoint_id": endpoint_id, "job_id": job_id, "seq": seq}
        )
        free += [following] if following is not None else []
    waiting = session.scalar(_waiting_statement(), {"endpoint_id": endpoint_id, "now": now})
    return [*free, waiting] if waiting is not None and waiting not in free else free


@built_once
def _waiting_statement() -> sa.Select[int]:
    """The endpoint's oldest message that is due and not held back by its job's order."""
    return (
        sa.select(WebhookDelivery.id)
        .where(
            WebhookDelivery.endpoint_id == sa.bindparam("endpoint_id"),
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= _NOW,
            ~_earlier_open(),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
    )


@built_once
def _next_statement() -> sa.Select[int]:
    """``_next_of``'s query (every delivered message runs it), built once."""
    return (
        sa.select(WebhookDelivery.id)
        .where(
            WebhookDelivery.endpoint_id == sa.bindparam("endpoint_id"),
            WebhookDelivery.job_id == sa.bindparam("job_id"),
            WebhookDelivery.seq > sa.bindparam("seq"),
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .order_by(WebhookDelivery.seq)
        .limit(1)
    )


def _disable(session: Session, endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.enabled, endpoint.disabled_reason = False, reason[:200]
    text = f"Your webhook endpoint {endpoint.url[:300]} was disabled: {reason}."
    if endpoint.owner_role == Role.CONSUMER and endpoint.owner_id is not None:
        notify_consumer(session, endpoint.owner_id, "webhook_disabled", text[:500])
    elif endpoint.owner_role == Role.WORKER and endpoint.owner_id is not None:
        notify_worker(session, endpoint.owner_id, "webhook_disabled", text[:500])
    log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id, "why": reason})


@dataclass(frozen=True)
class Recorded:
    """What recording an attempt decided: the delivery's outcome and what is free to go next."""

    outcome: str  # delivered, retry, failed, disabled, lost (the lease was taken over)
    kick: list[int]
    created_at: dt.datetime | None = None
    retry_at: dt.datetime | None = None


@built_once
def _record_statements() -> tuple[
    sa.Select[DeliveryStatus, dt.datetime | None, int, int, int | None, int | None, dt.datetime],
    sa.Insert,
    sa.Update,
    sa.Update,
]:
    """``record_attempt``'s statements (every attempt runs them), built once."""
    lock = (
        sa.select(
            WebhookDelivery.status,
            WebhookDelivery.next_attempt_at,
            WebhookDelivery.tries,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.job_id,
            WebhookDelivery.seq,
            WebhookDelivery.created_at,
        )
        .where(WebhookDelivery.id == sa.bindparam("delivery_id"))
        .with_for_update()
    )
    attempt = sa.insert(WebhookAttempt)
    move = (
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == sa.bindparam("delivery_id"))
        .values(
            status=sa.bindparam("status", type_=WebhookDelivery.status.type),
            next_attempt_at=sa.bindparam("next_attempt_at", type_=_NOW.type),
            finished_at=sa.bindparam("finished_at", type_=_NOW.type),
            tries=sa.bindparam("tries"),
        )
        .execution_options(synchronize_session=False)
    )
    # A delivered message resets the endpoint's failure count, writing only when it is not 0.
    # An UPDATE of no key column locks the row FOR NO KEY UPDATE, so an event's deliveries to
    # this endpoint (their foreign key takes FOR KEY SHARE) are written meanwhile.
    reset = (
        sa.update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == sa.bindparam("endpoint_id"),
            WebhookEndpoint.consecutive_failures != 0,
        )
        .values(consecutive_failures=0)
        .execution_options(synchronize_session=False)
    )
    return lock, attempt, move, reset


def record_attempt(
    session: Session, claimed: Claimed, answer: Answer, *, settings: Settings, now: dt.datetime
) -> Recorded:
    """Store the attempt and decide: delivered, retried on the schedule, failed or disabled."""
    lock, attempt, move, reset = _record_statements()
    delivery = session.execute(lock, {"delivery_id": claimed.delivery_id}).one_or_none()
    if delivery is None:
        return Recorded("lost", [])  # its endpoint was deleted meanwhile, and it with it
    session.execute(
        attempt,
        {
            "delivery_id": claimed.delivery_id,
            "attempted_at": answer.attempted_at,
            "response_status": answer.status,
            "duration_ms": answer.duration_ms,
            "error": answer.error,
            "response_body": answer.body,
        },
    )
    if delivery.status != DeliveryStatus.SENDING or delivery.next_attempt_at != claimed.lease_until:
        return Recorded("lost", [])  # someone re-claimed it after our lease; theirs counts
    tries = delivery.tries + 1

    def moved(status: DeliveryStatus, next_attempt_at: dt.datetime | None = None) -> None:
        finished_at = None if status == DeliveryStatus.PENDING else now
        session.execute(
            move,
            {
                "delivery_id": claimed.delivery_id,
                "status": status,
                "next_attempt_at": next_attempt_at,
                "finished_at": finished_at,
                "tries": tries,
            },
        )

    if answer.delivered:
        moved(DeliveryStatus.DELIVERED)
        session.execute(reset, {"endpoint_id": delivery.endpoint_id})
        return Recorded(
            "delivered",
            _next_of(session, delivery.endpoint_id, delivery.job_id, delivery.seq, now),
            delivery.created_at,
        )
    again = retry_at(settings, tries, answer.status, now)
    if again is not None:
        moved(DeliveryStatus.PENDING, again)
        return Recorded("retry", [], retry_at=again)
    moved(DeliveryStatus.FAILED)
    # FOR NO KEY UPDATE, not FOR UPDATE, for the same reason as ``reset``'s.
    endpoint = session.get(
        WebhookEndpoint, delivery.endpoint_id, with_for_update={"key_share": True}
    )
    assert endpoint is not None
    if answer.status == GONE:
        _disable(session, endpoint, "the receiver answered 410 Gone")
        outcome = "disabled"
    else:
        endpoint.consecutive_failures += 1
        outcome = "failed"
        if endpoint.enabled and endpoint.consecutive_failures >= settings.webhook_disable_after:
            reason = f"{endpoint.consecutive_failures} deliveries failed in a row"
            _disable(session, endpoint, reason)
            outcome = "disabled"
    session.flush()
    return Recorded(
        outcome, _next_of(session, delivery.endpoint_id, delivery.job_id, delivery.seq, now)
    )


def retry_delivery(
    session: Session, endpoint_id: int, delivery_id: int, *, now: dt.datetime
) -> WebhookDelivery:
    """Send a delivery again now, with a fresh retry schedule (not while it is being sent)."""
    delivery = session.scalar(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
    )
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} not found.")
    moved = session.scalar(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status != DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.PENDING, tries=0, next_attempt_at=now, finished_at=None)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    if moved is None:
        raise Conflict("This delivery is being sent right now; retry once it has finished.")
    session.refresh(delivery)
    kick_after_commit(session, [delivery_id])
    return delivery


# --- the sweep ---------------------------------------------------------------------------

BATCH = 1000


@built_once
def _due_statements() -> tuple[sa.Select[int, dt.datetime | None], sa.Update]:
    """``due_deliveries``' two statements (every sweep runs them), built once."""
    at = WebhookDelivery.next_attempt_at
    armed = (
        sa.select(WebhookDelivery.id, at)
        .where(
            at.is_not(None),
            at > sa.bindparam("now", type_=at.type),
            at <= sa.bindparam("until", type_=at.type),
            WebhookDelivery.status == DeliveryStatus.PENDING,
            ~_earlier_open(),
        )
        .order_by(at)
        .limit(BATCH)
    )
    overdue = (
        sa.select(WebhookDelivery.id)
        .where(
            at.is_not(None),
            at <= sa.bindparam("overdue_before", type_=at.type),
            ~_earlier_open(),
        )
        .order_by(at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    kick = (
        sa.update(WebhookDelivery)
        .where(ClaimedIds(WebhookDelivery.id, overdue))
        .values(next_attempt_at=sa.bindparam("now", type_=at.type))
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return armed, kick


def due_deliveries(
    session: Session, *, now: dt.datetime, horizon_seconds: float, grace_seconds: float
) -> list[tuple[int, dt.datetime | None]]:
    """Deliveries to send: ``(id, at)`` with ``at`` None for now.

    Those due before ``now + horizon`` and not yet overdue are armed (sent with an ETA, or at
    once when due); those overdue by the grace (a lost task, an expired lease) get
    ``next_attempt_at = now`` so each is re-kicked once per grace. Both read the partial index
    on ``next_attempt_at``; a message waiting for an earlier one of its job is left alone.
    """
    params = {
        "now": now,
        "until": now + dt.timedelta(seconds=horizon_seconds),
        "overdue_before": now - dt.timedelta(seconds=grace_seconds),
    }
    armed_stmt, kick_stmt = _due_statements()
    armed = session.execute(armed_stmt, params).all()
    kicked = session.scalars(kick_stmt, params).all()
    return [(i, at) for i, at in armed] + [(i, None) for i in kicked]
