"""Schemas of the job resource: posting, listing and reading jobs, and their history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gigco.models import JobStatus
from gigco.web.schemas import LocationSchema, StorableTextSchema, StrictSchema

# How far ahead a job may be booked: a decade, far past any real booking and far inside
# what datetime arithmetic (the end time, the conversion to UTC) can represent.
MAX_DAYS_AHEAD = 3650


def _quarter_hours(value: float) -> None:
    if (value * 4) % 1:
        raise ma.ValidationError("Must be a multiple of 0.25.")


def _in_future(value: dt.datetime) -> None:
    now = dt.datetime.now(dt.UTC)
    if value <= now:
        raise ma.ValidationError("Must be in the future.")
    if value > now + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise ma.ValidationError(f"Must be at most {MAX_DAYS_AHEAD} days ahead.")


class JobCreateSchema(StrictSchema):
    """Post a job."""

    title = fields.String(required=True, validate=validate.Length(1, 200))
    description = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=5000)
    )
    category = fields.String(required=True, validate=validate.Length(1, 64))
    location = fields.Nested(LocationSchema, required=True)
    scheduled_start = fields.AwareDateTime(
        required=True,
        validate=_in_future,
        metadata={"description": f"ISO 8601 with offset; future, at most {MAX_DAYS_AHEAD} days"},
    )
    estimated_hours = fields.Float(
        required=True, allow_nan=False, validate=[validate.Range(0.5, 12), _quarter_hours]
    )

    @ma.post_load
    def _in_utc(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Keep the start in UTC, so every response shows it as later reads do."""
        data["scheduled_start"] = data["scheduled_start"].astimezone(dt.UTC)
        return data


class JobQuerySchema(StrictSchema):
    """Filters for listing jobs."""

    status = fields.String(validate=validate.OneOf([s.value for s in JobStatus]))


class IdempotencyHeaderSchema(StorableTextSchema):
    """The optional Idempotency-Key header."""

    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = fields.String(data_key="Idempotency-Key", validate=validate.Length(1, 255))


class EventSchema(ma.Schema):
    """One entry of a job's history, as ``gigco.lifecycle.projection.project_event`` shows it."""

    seq = fields.Integer()
    type = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor = fields.String()
    data = fields.Dict()
    created_at = fields.String(metadata={"format": "date-time"})


class JobSchema(ma.Schema):
    """The job resource."""

    id = fields.Integer()
    consumer_id = fields.Integer()
    worker_id = fields.Integer(allow_none=True)
    title = fields.String()
    description = fields.String(allow_none=True)
    category = fields.Function(lambda job: job.category.name)
    location = fields.Function(lambda job: {"lat": job.lat, "lng": job.lng})
    scheduled_start = fields.AwareDateTime()
    estimated_hours = fields.Float()
    status = fields.Function(lambda job: job.status.value)
    subtotal_cents = fields.Integer(allow_none=True)
    fee_cents = fields.Integer(allow_none=True)
    price_cents = fields.Integer(allow_none=True)
    currency = fields.String()
    offer_expires_at = fields.AwareDateTime(allow_none=True)
    review_deadline = fields.AwareDateTime(allow_none=True)
    match_round = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
