"""Schemas of the job resource: posting, listing and reading jobs, and their history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gigco import clock
from gigco.lifecycle.projection import LOCATION_DOC, project_job
from gigco.models import Job, JobStatus
from gigco.web.auth import current_principal
from gigco.web.pagination import KeysetQuerySchema
from gigco.web.schemas import LocationSchema, StorableTextSchema, StrictSchema

# How far ahead a job may be booked: a decade, far past any real booking and far inside
# what datetime arithmetic (the end time, the conversion to UTC) can represent.
MAX_DAYS_AHEAD = 3650


def _quarter_hours(value: float) -> None:
    if (value * 4) % 1:
        raise ma.ValidationError("Must be a multiple of 0.25.")


def _not_too_far(value: dt.datetime) -> None:
    if value > clock.now() + dt.timedelta(days=MAX_DAYS_AHEAD):
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
        validate=_not_too_far,
        metadata={
            "description": f"ISO 8601 with offset; future (on its test clock, if on one), "
            f"at most {MAX_DAYS_AHEAD} days"
        },
    )
    test_clock = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        metadata={"description": "a test clock of yours to run the job on (GIGCO_TEST_CLOCKS=1)"},
    )
    estimated_hours = fields.Float(
        required=True,
        allow_nan=False,
        validate=[validate.Range(0.5, 12), _quarter_hours],
        metadata={"multipleOf": 0.25, "description": "0.5 to 12, in steps of a quarter hour"},
    )

    @ma.validates_schema(skip_on_field_errors=False)
    def _in_future(self, data: dict[str, Any], **_: Any) -> None:
        """In the future; a job on a test clock is checked against its clock's time instead
        (``gigco.lifecycle.jobs.create_job``)."""
        start = data.get("scheduled_start")
        if start is not None and data.get("test_clock") is None and start <= clock.now():
            raise ma.ValidationError("Must be in the future.", field_name="scheduled_start")

    @ma.post_load
    def _in_utc(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Keep the start in UTC, so every response shows it as later reads do."""
        data["scheduled_start"] = data["scheduled_start"].astimezone(dt.UTC)
        return data


class JobQuerySchema(KeysetQuerySchema):
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


_NOT_TO_WORKERS = "Only to the job's consumer and the operator."


class JobSchema(ma.Schema):
    """The job resource, as ``gigco.lifecycle.projection.project_job`` shows it to the caller.

    Workers do not get the consumer's id, the price or the fee (their earnings are the
    subtotal), as the opportunity listing does not show them.
    """

    id = fields.Integer()
    consumer_id = fields.Integer(metadata={"description": _NOT_TO_WORKERS})
    worker_id = fields.Integer(allow_none=True)
    title = fields.String()
    description = fields.String(allow_none=True)
    category = fields.String()
    location = fields.Dict(metadata={"description": LOCATION_DOC})
    scheduled_start = fields.String(metadata={"format": "date-time"})
    estimated_hours = fields.Float()
    status = fields.String()
    subtotal_cents = fields.Integer(
        allow_none=True, metadata={"description": "The work's price; what the worker earns."}
    )
    fee_cents = fields.Integer(
        allow_none=True, metadata={"description": "The platform's fee. " + _NOT_TO_WORKERS}
    )
    price_cents = fields.Integer(
        allow_none=True,
        metadata={"description": "What the consumer pays: subtotal plus fee. " + _NOT_TO_WORKERS},
    )
    currency = fields.String()
    offer_expires_at = fields.String(
        allow_none=True, metadata={"format": "date-time", "description": _NOT_TO_WORKERS}
    )
    review_deadline = fields.String(allow_none=True, metadata={"format": "date-time"})
    match_round = fields.Integer(metadata={"description": _NOT_TO_WORKERS})
    policy_version = fields.Integer(
        allow_none=True,
        metadata={
            "description": "the lifecycle policy the job runs under (GET /v1/policies/<version>)"
        },
    )
    test_clock = fields.Integer(allow_none=True, metadata={"description": "its test clock"})
    created_at = fields.String(metadata={"format": "date-time"})
    updated_at = fields.String(metadata={"format": "date-time"})

    @ma.pre_dump
    def _project(self, job: Job | dict[str, Any], **_: Any) -> dict[str, Any]:
        """Every dump of a job goes through the projection, for whoever is calling."""
        return project_job(job, current_principal()) if isinstance(job, Job) else job
