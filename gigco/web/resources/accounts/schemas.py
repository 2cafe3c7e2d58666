"""Schemas of consumers and workers."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gigco.lifecycle.gateway import PAYMENT_METHODS
from gigco.lifecycle.matching import MAX_SERVICE_RADIUS_KM
from gigco.web.schemas import LocationSchema, StrictSchema


class Trimmed(fields.String):
    """A string with surrounding whitespace removed before validation (so "   " is empty); its
    ``Length`` maximum (the documented ``maxLength``) holds for the string as sent, too."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        sent = super()._deserialize(value, attr, data, **kwargs)
        for rule in self.validators:
            if isinstance(rule, validate.Length):
                rule(sent)  # its maximum, as sent; its minimum holds again once trimmed
        return sent.strip()


def _name(**kwargs: Any) -> Trimmed:
    return Trimmed(
        validate=validate.Length(1, 200, error="Must be 1 to 200 characters, not blank."), **kwargs
    )


def _radius(**kwargs: Any) -> fields.Float:
    """A service radius: 0 to ``MAX_SERVICE_RADIUS_KM`` kilometres."""
    return fields.Float(
        validate=validate.Range(
            0,
            MAX_SERVICE_RADIUS_KM,
            error=f"Must be 0 to {MAX_SERVICE_RADIUS_KM:g} km: a worker travels to each job.",
        ),
        allow_nan=False,
        metadata={"description": f"Kilometres, at most {MAX_SERVICE_RADIUS_KM:g}."},
        **kwargs,
    )


def _rating(row: object) -> float | None:
    count = row.rating_count  # type: ignore[attr-defined]
    return round(row.rating_sum / count, 2) if count else None  # type: ignore[attr-defined]


class ConsumerSignUpSchema(StrictSchema):
    """Sign up as a consumer."""

    name = _name(required=True)
    email = fields.Email(required=True, validate=validate.Length(max=320))
    payment_method = fields.String(
        load_default="pm_card_visa", validate=validate.OneOf(PAYMENT_METHODS)
    )


class WorkerSignUpSchema(StrictSchema):
    """Sign up as a worker."""

    name = _name(required=True)
    email = fields.Email(required=True, validate=validate.Length(max=320))
    skills = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        required=True,
        validate=validate.Length(1, 20),
    )
    location = fields.Nested(LocationSchema, required=True)
    service_radius_km = _radius(required=True)
    available = fields.Boolean(load_default=True)


class ConsumerUpdateSchema(StrictSchema):
    """What a consumer may change about themselves."""

    name = _name()
    payment_method = fields.String(validate=validate.OneOf(PAYMENT_METHODS))


class WorkerUpdateSchema(StrictSchema):
    """What a worker may change about themselves."""

    available = fields.Boolean()
    location = fields.Nested(LocationSchema)
    service_radius_km = _radius()
    skills = fields.List(
        fields.String(validate=validate.Length(1, 64)), validate=validate.Length(1, 20)
    )


class ConsumerSchema(ma.Schema):
    """A consumer's own profile."""

    role = fields.Constant("consumer")
    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    payment_method = fields.String()
    rating = fields.Function(_rating, allow_none=True)
    review_count = fields.Integer(attribute="rating_count")
    completed_jobs = fields.Integer()
    created_at = fields.AwareDateTime()


class ConsumerWithTokenSchema(ConsumerSchema):
    """A new consumer and their token, shown this once."""

    token = fields.String()


class PublicWorkerSchema(ma.Schema):
    """What anyone may see of a worker."""

    id = fields.Integer()
    name = fields.String()
    skills = fields.Function(lambda w: sorted(c.name for c in w.skills))
    rating = fields.Function(_rating, allow_none=True)
    review_count = fields.Integer(attribute="rating_count")
    completed_jobs = fields.Integer()


class WorkerSchema(PublicWorkerSchema):
    """A worker's own profile."""

    role = fields.Constant("worker")
    email = fields.String()
    location = fields.Function(lambda w: {"lat": w.lat, "lng": w.lng})
    service_radius_km = fields.Float()
    available = fields.Boolean()
    created_at = fields.AwareDateTime()


class WorkerWithTokenSchema(WorkerSchema):
    """A new worker and their token, shown this once."""

    token = fields.String()


class MeSchema(ma.Schema):
    """Who the caller is: role plus the profile (operator: role only)."""

    class Meta:
        unknown = ma.INCLUDE

    role = fields.String(validate=validate.OneOf(["consumer", "worker", "operator"]))


class RotatedTokenSchema(ma.Schema):
    """The caller's new token, shown this once; every older one is already refused."""

    role = fields.String(metadata={"example": "consumer"})
    id = fields.Integer()
    token = fields.String()
