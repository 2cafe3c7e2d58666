"""What a viewer may see of a job and of everything about it: one table, one entry.

The job resource, its history, its payment and its reviews, action replies, notifications,
the opportunity listing and webhook payloads are all built here, so none can disagree.
``EVENT_FIELDS`` says, per event type and audience, which keys of the event's ``data`` are
shown; ``JOB_FIELDS``, ``PAYMENT_FIELDS``, ``ATTEMPT_FIELDS`` and ``REVIEW_FIELDS`` do the
same for the resources. Then one identity rule removes any worker or consumer id the viewer
may not know: a worker sees only their own worker id, the consumer only the assigned
worker's (it is in the job resource), and no worker sees a consumer id. No consumer or
worker ever sees a distance, a location of a worker, a charge or refund id, the payment's
idempotency key or the gateway's text about an attempt (a decline's detail names the card);
workers see what they earn, never the price or the fee. A worker who has not taken the job
(a candidate) sees where it is only approximately (``PLACE``: its ~1 km cell,
``gigco.lifecycle.places``), and their distance to that approximate place. The operator sees
everything. An event type missing from the table fails closed: a non-operator sees none of
its data.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from gigco.lifecycle.places import approximate, km_between
from gigco.lifecycle.principals import Principal
from gigco.models import (
    Dispute,
    Job,
    JobEvent,
    Notification,
    Opportunity,
    Payment,
    Review,
    Role,
    TestClock,
)


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


_REFUND_SPLIT = "refund_cents refund_fee_cents refund_earnings_cents"

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
    # A late cancel's fee: what the consumer pays is what the assigned worker earns.
    "cancelled": _cell(consumer="late_cancel_fee_cents", assigned="late_cancel_fee_cents"),
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
    # Who withdrew is the operator's to know; the consumer sees that the job is matched again.
    "worker_withdrew": _cell(),
    "worker_no_show": _cell(consumer="late_by_seconds"),
    "overrun_flagged": _cell(
        consumer="expected_end late_by_seconds", assigned="expected_end late_by_seconds"
    ),
    "scheduled": _cell(),
    "in_progress": _cell(),
    "completed": _cell(),
    "payment_attempt_refused": _cell(consumer="attempt outcome", assigned="attempt"),
    "payment_failed": _cell(consumer="attempts", assigned="attempts"),
    "payment_retry": _cell(),
    "paid": _cell(consumer="amount_cents attempt", assigned="attempt"),
    "late_cancel_fee_charged": _cell(
        consumer="amount_cents attempt", assigned="earnings_cents attempt"
    ),
    "late_cancel_fee_refused": _cell(consumer="attempt outcome", assigned="attempt"),
    "late_cancel_fee_failed": _cell(
        consumer="amount_cents attempts", assigned="earnings_cents attempts"
    ),
    "review_pending": _cell(consumer="review_deadline", assigned="review_deadline"),
    "review_received": _cell(consumer="rating author_role", assigned="rating author_role"),
    "closed": _cell(consumer="reviews", assigned="reviews"),
    # A dispute and its refund: both parties see the reasons and how the refund splits
    # (lifecycle.disputes); the gateway's refund id is the operator's.
    "dispute_opened": _cell(consumer="dispute_id reason", assigned="dispute_id reason"),
    "dispute_resolved": _cell(
        consumer=f"dispute_id note {_REFUND_SPLIT}", assigned=f"dispute_id note {_REFUND_SPLIT}"
    ),
    "refunded": _cell(
        consumer=f"dispute_id {_REFUND_SPLIT}", assigned=f"dispute_id {_REFUND_SPLIT}"
    ),
    "policy_upgraded": _cell(
        consumer="from_version to_version",
        assigned="from_version to_version",
        candidate="from_version to_version",
    ),
}

# The job resource's fields each audience sees. Workers see what the opportunity listing
# shows them (no consumer id, no price or fee: their earnings are the subtotal) and the
# job's progress.
_WORKER_JOB = frozenset(
    {
        *("id", "worker_id", "title", "description", "category", "location"),
        *("scheduled_start", "estimated_hours", "status", "subtotal_cents", "currency"),
        *("review_deadline", "policy_version", "created_at", "updated_at"),
    }
)
JOB_FIELDS: dict[Audience, frozenset[str] | None] = {
    Audience.OPERATOR: None,  # everything
    Audience.CONSUMER: None,  # everything: it is their job
    Audience.ASSIGNED: _WORKER_JOB,
    Audience.CANDIDATE: _WORKER_JOB,
}

# The payment resource's fields each audience sees (``kind``: the job's price, or the
# late-cancellation fee of a job cancelled late, all of it the worker's): the consumer what
# they pay and how it splits, the assigned worker what they earn (``worker_earnings_cents``:
# the amount less the platform fee, which is the job's subtotal). Only the operator sees the
# idempotency key.
PAYMENT_FIELDS: dict[Audience, frozenset[str] | None] = {
    Audience.OPERATOR: None,
    Audience.CONSUMER: frozenset(
        {
            *("job_id", "kind", "status", "amount_cents", "fee_cents", "worker_earnings_cents"),
            *("currency", "succeeded_at", "attempts"),
            *("refunded_cents", "refunded_fee_cents", "refunded_earnings_cents"),
        }
    ),
    Audience.ASSIGNED: frozenset(
        {
            *("job_id", "kind", "status", "worker_earnings_cents", "currency", "succeeded_at"),
            # How a refund split is shown to both sides (its fee share, not the fee).
            *("attempts", "refunded_cents", "refunded_fee_cents", "refunded_earnings_cents"),
        }
    ),
    # A candidate sees no payment today (none exists while an opportunity is pending); were
    # there one, they would see what the job's status tells them already.
    Audience.CANDIDATE: frozenset(
        {"job_id", "kind", "status", "currency", "succeeded_at", "attempts"}
    ),
}
# Each attempt's fields: the consumer sees how it ended (as in the history), a worker when it
# was made; the gateway's text (``detail``) only the operator.
ATTEMPT_FIELDS: dict[Audience, frozenset[str] | None] = {
    Audience.OPERATOR: None,
    Audience.CONSUMER: frozenset({"number", "attempted_at", "outcome"}),
    Audience.ASSIGNED: frozenset({"number", "attempted_at"}),
    Audience.CANDIDATE: frozenset({"number", "attempted_at"}),
}
# A dispute's fields: both parties see the reason, the resolution and how the refund splits
# (the "show it on both sides"); the refund's key and the processor's id only the
# operator.
_DISPUTE = frozenset(
    {
        *("id", "job_id", "status", "reason", "opened_at", "resolved_at", "note"),
        *("refund_cents", "refund_fee_cents", "refund_earnings_cents", "refund_status"),
        "refunded_at",
    }
)
DISPUTE_FIELDS: dict[Audience, frozenset[str] | None] = {
    Audience.OPERATOR: None,
    Audience.CONSUMER: _DISPUTE,
    Audience.ASSIGNED: _DISPUTE,
    Audience.CANDIDATE: frozenset({"id", "job_id", "status"}),
}
# A review's fields: the author's role, not their id (a party knows who the other side is
# from the job resource, as far as they may).
_REVIEW = frozenset({"id", "job_id", "author_role", "rating", "comment", "created_at"})
REVIEW_FIELDS: dict[Audience, frozenset[str] | None] = {
    Audience.OPERATOR: None,
    Audience.CONSUMER: _REVIEW,
    Audience.ASSIGNED: _REVIEW,
    Audience.CANDIDATE: _REVIEW,
}
# How exactly each audience sees where the job is. A candidate (any worker but the assigned
# one) sees the centre of its ~1 km cell, marked ``"approximate": true``, until they accept:
# fake worker accounts must not harvest addresses.
EXACT, APPROXIMATE = "exact", "approximate"
PLACE: dict[Audience, str] = {
    Audience.OPERATOR: EXACT,
    Audience.CONSUMER: EXACT,
    Audience.ASSIGNED: EXACT,
    Audience.CANDIDATE: APPROXIMATE,
}
# ``PLACE`` in words, for the OpenAPI document's ``location`` fields.
LOCATION_DOC = (
    "{lat, lng}. Exact for the job's consumer, its assigned worker and the operator; any other"
    " worker (one holding an opportunity) gets the centre of the ~1 km cell the job is in,"
    ' with "approximate": true, until they accept.'
)

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
    "cancellation": frozenset({"late_cancel_fee_cents"}),
    "late_cancel_fee": frozenset({"amount_cents", "earnings_cents"}),
    "late_cancel_fee_failed": frozenset({"amount_cents", "earnings_cents"}),
    "withdrawal": frozenset(),
    "no_show": frozenset(),
    "overrun": frozenset({"expected_end"}),
    "dispute_opened": frozenset({"reason"}),
    "dispute_resolved": frozenset({"note", *_REFUND_SPLIT.split()}),
    "refund": frozenset(_REFUND_SPLIT.split()),
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


# The events naming a worker who was assigned to the job: its consumer was told who they are
# (the assignment notification), so they keep knowing that worker there after a withdrawal
# or a no-show, as their webhooks showed it at the time.
_NAMES_THEIR_WORKER = frozenset({"worker_assigned", "worker_withdrew", "worker_no_show"})


def _their_worker(event: JobEvent, viewer: Principal) -> set[int | None]:
    """The worker ``event`` names to the job's consumer as one who was assigned to it."""
    if viewer.role == Role.CONSUMER and event.type in _NAMES_THEIR_WORKER:
        return {(event.data or {}).get("worker_id")}
    return set()


def _actor(
    actor: str, job: Job | None, viewer: Principal, also: set[int | None] | None = None
) -> str:
    """The actor string, with the id cut off where the viewer may not know it."""
    kind, _, raw = actor.partition(":")
    if not raw or viewer.role == Role.OPERATOR:
        return actor
    known = _known_workers(job, viewer) | (also or set())
    if kind == "worker" and raw.isdigit() and int(raw) in known:
        return actor
    if kind == "consumer" and viewer.role == Role.CONSUMER and raw == str(viewer.id):
        return actor
    return kind


def _data(
    data: dict[str, Any],
    keys: frozenset[str],
    job: Job | None,
    viewer: Principal,
    also: set[int | None] | None = None,
) -> dict[str, Any]:
    """``data`` cut to ``keys``, without a worker id the viewer may not know."""
    shown = {k: v for k, v in data.items() if k in keys}
    known = _known_workers(job, viewer) | (also or set())
    if "worker_id" in shown and shown["worker_id"] not in known:
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
    also = _their_worker(event, viewer)
    return {
        "seq": event.seq,
        "type": event.type,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "actor": _actor(event.actor, job, viewer, also),
        "data": data if keys is None else _data(data, keys, job, viewer, also),
        "created_at": _iso(event.created_at),
    }


def _cut(full: dict[str, Any], keys: frozenset[str] | None) -> dict[str, Any]:
    """``full`` cut to ``keys`` (None: all of it)."""
    return full if keys is None else {k: v for k, v in full.items() if k in keys}


def _location(job: Job, who: Audience) -> dict[str, Any]:
    """Where ``job`` is, as ``who`` may know it (``PLACE``)."""
    if PLACE[who] == EXACT:
        return {"lat": job.lat, "lng": job.lng}
    lat, lng = approximate(job.lat, job.lng)
    return {"lat": lat, "lng": lng, "approximate": True}


def project_job(job: Job, viewer: Principal) -> dict[str, Any]:
    """The job resource as ``viewer`` may see it (the API's JobSchema fields), JSON-ready."""
    who = audience(job, viewer)
    full = {
        "id": job.id,
        "consumer_id": job.consumer_id,
        "worker_id": job.worker_id,
        "title": job.title,
        "description": job.description,
        "category": job.category.name,
        "location": _location(job, who),
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
        "policy_version": job.policy_version,
        "test_clock": job.test_clock_id,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }
    return _cut(full, JOB_FIELDS[who])


def project_payment(payment: Payment, job: Job, viewer: Principal) -> dict[str, Any]:
    """The job's payment as ``viewer`` may see it (the API's PaymentSchema fields), JSON-ready."""
    who = audience(job, viewer)
    attempts = [
        {
            "number": attempt.number,
            "attempted_at": _iso(attempt.attempted_at),
            "outcome": attempt.outcome.value,
            "detail": attempt.detail,
            "idempotency_key": attempt.idempotency_key,
        }
        for attempt in payment.attempts
    ]
    full = {
        "job_id": payment.job_id,
        "kind": payment.kind,
        "status": payment.status.value,
        "amount_cents": payment.amount_cents,
        "fee_cents": payment.fee_cents,
        "worker_earnings_cents": payment.worker_earnings_cents,
        "currency": job.currency,
        "idempotency_key": payment.idempotency_key,
        "succeeded_at": _iso(payment.succeeded_at),
        "attempts": [_cut(attempt, ATTEMPT_FIELDS[who]) for attempt in attempts],
        "refunded_cents": payment.refunded_cents,
        "refunded_fee_cents": payment.refunded_fee_cents,
        "refunded_earnings_cents": payment.refunded_cents - payment.refunded_fee_cents,
    }
    return _cut(full, PAYMENT_FIELDS[who])


def project_dispute(dispute: Dispute, job: Job, viewer: Principal) -> dict[str, Any]:
    """The job's dispute as ``viewer`` may see it (the API's DisputeSchema fields)."""
    refund, fee = dispute.refund_cents, dispute.refund_fee_cents
    full = {
        "id": dispute.id,
        "job_id": dispute.job_id,
        "status": dispute.status.value,
        "reason": dispute.reason,
        "opened_at": _iso(dispute.opened_at),
        "resolved_at": _iso(dispute.resolved_at),
        "note": dispute.note,
        "refund_cents": refund,
        "refund_fee_cents": fee,
        "refund_earnings_cents": None if refund is None else refund - (fee or 0),
        "refund_status": dispute.refund_status.value if dispute.refund_status else None,
        "refunded_at": _iso(dispute.refunded_at),
        "refund_key": dispute.refund_key,
        "gateway_refund_id": dispute.gateway_refund_id,
    }
    return _cut(full, DISPUTE_FIELDS[audience(job, viewer)])


def project_review(review: Review, job: Job, viewer: Principal) -> dict[str, Any]:
    """A review of ``job`` as ``viewer`` may see it (the API's ReviewSchema fields), JSON-ready."""
    full = {
        "id": review.id,
        "job_id": review.job_id,
        "author_role": review.author_role.value,
        "author_id": review.author_id,
        "rating": review.rating,
        "comment": review.comment,
        "created_at": _iso(review.created_at),
    }
    return _cut(full, REVIEW_FIELDS[audience(job, viewer)])


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

    Its own worker sees their distance to the job as far as they may know where it is: to
    its approximate place while they are a candidate (``opp.worker`` loaded), the exact
    distance once assigned; nobody else but the operator sees a distance.
    """
    shown: dict[str, Any] = {
        "id": opp.id,
        "job_id": opp.job_id,
        "round": opp.round,
        "status": opp.status.value,
        "offered_at": _iso(opp.offered_at),
        "expires_at": _iso(opp.expires_at),
        "job": project_job(opp.job, viewer),
    }
    if viewer.role == Role.OPERATOR:
        shown["distance_km"] = opp.distance_km
    elif viewer.role == Role.WORKER and viewer.id == opp.worker_id:
        who = audience(opp.job, viewer)
        if PLACE[who] == EXACT:
            shown["distance_km"] = opp.distance_km
        else:
            lat, lng = approximate(opp.job.lat, opp.job.lng)
            shown["distance_km"] = round(km_between(opp.worker.lat, opp.worker.lng, lat, lng), 1)
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
