"""Schemas of a worker's pending opportunities."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields

from gigco.lifecycle.projection import LOCATION_DOC, project_opportunity
from gigco.models import Opportunity
from gigco.web.auth import current_principal


class JobSummarySchema(ma.Schema):
    """What a worker needs to decide (the projected job: no consumer id, price or fee)."""

    id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    category = fields.String()
    location = fields.Dict(metadata={"description": LOCATION_DOC})
    scheduled_start = fields.String(metadata={"format": "date-time"})
    estimated_hours = fields.Float()
    earnings_cents = fields.Integer(attribute="subtotal_cents")
    currency = fields.String()


class OpportunitySchema(ma.Schema):
    """An open offer of a job to the calling worker, as the projection shows it."""

    id = fields.Integer()
    job_id = fields.Integer()
    round = fields.Integer()
    status = fields.String()
    distance_km = fields.Float(
        metadata={
            "description": "Only to the worker it is offered to: from their own location to"
            " the job's, approximate until they accept."
        }
    )
    offered_at = fields.String(metadata={"format": "date-time"})
    expires_at = fields.String(metadata={"format": "date-time"})
    job = fields.Nested(JobSummarySchema)

    @ma.pre_dump
    def _project(self, opp: Opportunity | dict[str, Any], **_: Any) -> dict[str, Any]:
        """Every dump of an opportunity goes through the projection."""
        if isinstance(opp, Opportunity):
            return project_opportunity(opp, current_principal())
        return opp
