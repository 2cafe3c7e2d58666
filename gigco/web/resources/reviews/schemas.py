"""Schemas of reviews of a job by its consumer and its worker."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from gigco.web.schemas import StrictSchema


class ReviewCreateSchema(StrictSchema):
    """Review the other side of a job."""

    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ReviewSchema(ma.Schema):
    """A review."""

    id = fields.Integer()
    job_id = fields.Integer()
    author_role = fields.Function(lambda r: r.author_role.value)
    author_id = fields.Integer()
    rating = fields.Integer()
    comment = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
