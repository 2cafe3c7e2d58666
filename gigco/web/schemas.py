"""Schemas shared by several resources."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate


class StrictSchema(ma.Schema):
    """Unknown fields are errors, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


class LocationSchema(StrictSchema):
    """A point on Earth."""

    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)
    lng = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)


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


class ErrorSchema(ma.Schema):
    """Every error: ``{code, status, message, errors?}``."""

    code = fields.Integer(metadata={"description": "HTTP status code"})
    status = fields.String(metadata={"description": "HTTP reason phrase"})
    message = fields.String(metadata={"description": "What went wrong, for a person"})
    errors = fields.Dict(metadata={"description": "Field name to messages (validation only)"})
    current_status = fields.String(metadata={"description": "The job's status (409 only)"})


def errors(blp, *codes: int):  # type: ignore[no-untyped-def]
    """Document the error responses ``codes`` of a view in the OpenAPI spec."""

    def decorator(view):  # type: ignore[no-untyped-def]
        for code in codes:
            view = blp.alt_response(code, schema=ErrorSchema, description="Error")(view)
        return view

    return decorator
