"""Schemas of a worker's pending opportunities."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class JobSummarySchema(ma.Schema):
    """What a worker needs to decide."""

    id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    category = fields.Function(lambda job: job.category.name)
    location = fields.Function(lambda job: {"lat": job.lat, "lng": job.lng})
    scheduled_start = fields.AwareDateTime()
    estimated_hours = fields.Float()
    earnings_cents = fields.Integer(attribute="subtotal_cents")
    currency = fields.String()


class OpportunitySchema(ma.Schema):
    """An open offer of a job to the calling worker."""

    id = fields.Integer()
    job_id = fields.Integer()
    round = fields.Integer()
    status = fields.Function(lambda o: o.status.value)
    distance_km = fields.Float()
    offered_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()
    job = fields.Nested(JobSummarySchema)
