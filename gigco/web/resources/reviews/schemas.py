"""Schemas of reviews of a job by its consumer and its worker."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from gigco.models import Role
from gigco.web.schemas import StrictSchema


class ReviewCreateSchema(StrictSchema):
    """Review the other side of a job."""

    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ReviewSchema(ma.Schema):
    """A review, as ``gigco.lifecycle.projection.project_review`` shows it to the caller: by
    its author's role (the author's id is the operator's)."""

    id = fields.Integer()
    job_id = fields.Integer()
    author_role = fields.String(metadata={"enum": [Role.CONSUMER.value, Role.WORKER.value]})
    author_id = fields.Integer(metadata={"description": "Only to the operator."})
    rating = fields.Integer()
    comment = fields.String(allow_none=True)
    created_at = fields.String(metadata={"format": "date-time"})
