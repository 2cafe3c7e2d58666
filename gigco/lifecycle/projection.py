"""What a viewer may see of a job, its history events and notifications: one table, one entry.

The history API, action replies, notifications, the opportunity listing and webhook payloads
are all built here, so none can disagree. ``EVENT_FIELDS`` says, per event type and audience,
which keys of the event's ``data`` are shown; then one identity rule removes any worker or
consumer id the viewer may not know: a worker sees only their own worker id, the consumer
only the assigned worker's (it is in the job resource), and no worker sees a consumer id.
No consumer or worker ever sees a distance, a location of a worker, a charge id or the
consumer's decline details. The operator sees everything. An event type missing from the
table fails closed: a non-operator sees none of its data.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from gigco.lifecycle.principals import Principal
from gigco.models import Job, JobEvent, Notification, Opportunity, Role, TestClock


class Audience(StrEnum):
    """Who looks at a job, as far as what they may see is concerned."""

    OPERATOR = "operator"
    CONSUMER = "consumer"  # the job's own consumer
    ASSIGNED = "assigned"  # the job's assigned worker
    CANDIDATE = "candidate"  # any other worker who can see the job (one holding an opportunity)


def audience(job: Job, viewer: Principal) -> Audience:
    """The audience ``viewer`` belongs to for ``job`` (visibility is checked elsewhere)."""
    if viewer.role == Role.OPERATOR:
        return Audience.OPERATOR
    if viewer.role == Role.CONSUMER:
        return Audience.CONSUMER
    return Audience.ASSIGNED if viewer.id == job.worker_id else Audience.CANDIDATE


def _cell(
    consumer: str = "", assigned: str = "", candidate: str = ""
) -> dict[Audience, frozenset[str]]:
    """A row of the table: the data keys (space-separated) the job's consumer, its assigned
    worker and a candidate worker each see; an audience left out sees none."""
    return {
        Audience.CONSUMER: frozenset(consumer.split()),
        Audience.ASSIGNED: frozenset(assigned.split()),
        Audience.CANDIDATE: frozenset(candidate.split()),
    }


# The data keys each audience sees of each event type (the operator sees all of them).
# Never shown to any of the others: distance_km, a charge_id, a refusal's detail.
EVENT_FIELDS: dict[str, dict[Audience, frozenset[str]]] = {
    "created": _cell(
        consumer="category estimated_hours",
        assigned="category estimated_hours",
        candidate="category estimated_hours",
    ),
    "priced": _cell(
        consumer="subtotal_cents fee_cents price_cents",
        assigned="subtotal_cents",
        candidate="subtotal_cents",
    ),
    "offered": _cell(consumer="offer_expires_at"),
    "expired": _cell(consumer="late_by_seconds"),
    "rejected": _cell(),
    "accepted": _cell(),
    "cancelled": _cell(),
    "matching_round_started": _cell(consumer="round", assigned="round", candidate="round"),
    "matching_round_ended": _cell(
        consumer="round next_round_at",
        assigned="round next_round_at",
        candidate="round next_round_at",
    ),
    "opportunity_offered": _cell(
        consumer="round expires_at",
        assigned="worker_id round expires_at",
        candidate="worker_id round expires_at",
    ),
    "opportunity_declined": _cell(
        consumer="round", assigned="worker_id round", candidate="worker_id round"
    ),
    "opportunity_expired": _cell(
        consumer="round", assigned="worker_id round", candidate="worker_id round"
    ),
    "no_worker": _cell(consumer="rounds", assigned="rounds", candidate="rounds"),
    "worker_assigned": _cell(consumer="worker_id", assigned="worker_id opportunity_id"),
    "scheduled": _cell(),
    "in_progress": _cell(),
    "completed": _cell(),
    "payment_attempt_refused": _cell(consumer="attempt outcome", assigned="attempt"),
    "payment_failed": _cell(consumer="attempts", assigned="attempts"),
    "payment_retry": _cell(),
    "paid": _cell(consumer="amount_cents attempt", assigned="attempt"),
    "review_pending": _cell(consumer="review_deadline", assigned="review_deadline"),
    "review_received": _cell(consumer="rating author_role", assigned="rating author_role"),
    "closed": _cell(consumer="reviews", assigned="reviews"),
}

# The job resource's fields each audience sees. Workers see what the opportunity listing
# shows them (no consumer id, no price or fee: their earnings are the subtotal) and the
# job's progress.
_WORKER_JOB = frozenset(
    {
        *("id", "worker_id", "title", "description", "category", "location"),
        *("scheduled_start", "estimated_hours", "status", "subtotal_cents", "currency"),
        *("review_deadline", "created_at", "updated_at"),
    }
)
JOB_FIELDS: dict[Audience, frozenset[str] | None] = {
    Audience.OPERATOR: None,  # everything
    Audience.CONSUMER: None,  # everything: it is their job
    Audience.ASSIGNED: _WORKER_JOB,
    Audience.CANDIDATE: _WORKER_JOB,
}

# The data keys a recipient sees of each notification kind (keys written by gigco.lifecycle
# through notify_consumer / notify_worker; a recipient is always a consumer or a worker).
NOTIFICATION_FIELDS: dict[str, frozenset[str]] = {
    "offer": frozenset({"price_cents", "offer_expires_at"}),
    "opportunity": frozenset({"expires_at"}),
    "assignment": frozenset({"worker_id"}),
    "schedule": frozenset({"worker_id", "scheduled_start"}),
    "payment_receipt": frozenset({"amount_cents", "earnings_cents"}),
    "payment_failed": frozenset(),
    "review_request": frozenset(),
    "closure": frozenset(),
    "expiry": frozenset(),
    "no_worker": frozenset(),
    "cancellation": frozenset(),
}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _known_workers(job: Job | None, viewer: Principal) -> set[int | None]:
    """The worker ids ``viewer`` may see: their own, or the assigned worker for the consumer."""
    if viewer.role == Role.WORKER:
        return {viewer.id}
    if viewer.role == Role.CONSUMER and job is not None and job.worker_id is not None:
        return {job.worker_id}
    return set()


def _actor(actor: str, job: Job | None, viewer: Principal) -> str:
    """The actor string, with the id cut off where the viewer may not know it."""
    kind, _, raw = actor.partition(":")
    if not raw or viewer.role == Role.OPERATOR:
        return actor
    if kind == "worker" and raw.isdigit() and int(raw) in _known_workers(job, viewer):
        return actor
    if kind == "consumer" and viewer.role == Role.CONSUMER and raw == str(viewer.id):
        return actor
    return kind


def _data(
    data: dict[str, Any], keys: frozenset[str], job: Job | None, viewer: Principal
) -> dict[str, Any]:
    """``data`` cut to ``keys``, without a worker id the viewer may not know."""
    shown = {k: v for k, v in data.items() if k in keys}
    if "worker_id" in shown and shown["worker_id"] not in _known_workers(job, viewer):
        del shown["worker_id"]
    return shown


def event_keys(event_type: str, who: Audience) -> frozenset[str] | None:
    """The data keys ``who`` sees of ``event_type``: None means all (the operator)."""
    if who == Audience.OPERATOR:
        return None
    return EVENT_FIELDS.get(event_type, {}).get(who, frozenset())


def project_event(event: JobEvent, job: Job, viewer: Principal) -> dict[str, Any]:
    """The history event as ``viewer`` may see it, with JSON-ready values."""
    data = dict(event.data or {})
    keys = event_keys(event.type, audience(job, viewer))
    return {
        "seq": event.seq,
        "type": event.type,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "actor": _actor(event.actor, job, viewer),
        "data": data if keys is None else _data(data, keys, job, viewer),
        "created_at": _iso(event.created_at),
    }


def project_job(job: Job, viewer: Principal) -> dict[str, Any]:
    """The job resource as ``viewer`` may see it (the API's JobSchema fields), JSON-ready."""
    full = {
        "id": job.id,
        "consumer_id": job.consumer_id,
        "worker_id": job.worker_id,
        "title": job.title,
        "description": job.description,
        "category": job.category.name,
        "location": {"lat": job.lat, "lng": job.lng},
        "scheduled_start": _iso(job.scheduled_start),
        "estimated_hours": float(job.estimated_hours),
        "status": job.status.value,
        "subtotal_cents": job.subtotal_cents,
        "fee_cents": job.fee_cents,
        "price_cents": job.price_cents,
        "currency": job.currency,
        "offer_expires_at": _iso(job.offer_expires_at),
        "review_deadline": _iso(job.review_deadline),
        "match_round": job.match_round,
        "test_clock": job.test_clock_id,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }
    keys = JOB_FIELDS[audience(job, viewer)]
    return full if keys is None else {k: v for k, v in full.items() if k in keys}


def project_notification(note: Notification, viewer: Principal) -> dict[str, Any]:
    """A notification's data as its recipient may see it; an unknown kind shows no data."""
    data = dict(note.data or {})
    if viewer.role == Role.OPERATOR:
        return data
    keys = NOTIFICATION_FIELDS.get(note.kind, frozenset())
    if viewer.role == Role.CONSUMER:
        # A consumer's notifications name only the worker assigned to their job.
        return {k: v for k, v in data.items() if k in keys}
    return _data(data, keys, None, viewer)


def project_opportunity(opp: Opportunity, viewer: Principal) -> dict[str, Any]:
    """An opportunity as ``viewer`` (its worker, or the operator) may see it.

    Its own worker sees the distance to the job: it follows from the job's location, which
    they see, and their own; nobody else but the operator does.
    """
    own = viewer.role == Role.WORKER and viewer.id == opp.worker_id
    shown: dict[str, Any] = {
        "id": opp.id,
        "job_id": opp.job_id,
        "round": opp.round,
        "status": opp.status.value,
        "offered_at": _iso(opp.offered_at),
        "expires_at": _iso(opp.expires_at),
        "job": project_job(opp.job, viewer),
    }
    if own or viewer.role == Role.OPERATOR:
        shown["distance_km"] = opp.distance_km
    return shown


def project_test_clock(test_clock: TestClock) -> dict[str, Any]:
    """A test clock as its owner sees it (nobody else ever sees it: every query for one
    is by its owner, ``gigco.lifecycle.test_clocks``), JSON-ready."""
    return {
        "id": test_clock.id,
        "name": test_clock.name,
        "frozen_time": _iso(test_clock.frozen_time),
        "status": "ready" if test_clock.advance_to is None else "advancing",
        "advancing_to": _iso(test_clock.advance_to),
        "created_at": _iso(test_clock.created_at),
    }
