"""What a viewer may see of a job and of its history events: the one entry point.

The history API (``GET /v1/jobs/<id>/events``) and webhook payloads are both built here, so
the two can never disagree. Today every viewer sees every event unfiltered; the per-role
projection table (issue 11) fills these functions in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gigco.lifecycle.access import Principal
from gigco.models import Job, JobEvent


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def project_event(event: JobEvent, job: Job, viewer: Principal) -> dict[str, Any]:
    """The history event as ``viewer`` may see it, with JSON-ready values."""
    return {
        "seq": event.seq,
        "type": event.type,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "actor": event.actor,
        "data": dict(event.data or {}),
        "created_at": _iso(event.created_at),
    }


def project_job(job: Job, viewer: Principal) -> dict[str, Any]:
    """The job resource as ``viewer`` may see it (the API's JobSchema fields), JSON-ready."""
    return {
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
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }
