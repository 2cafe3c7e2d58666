"""Schemas of a job's dispute and its resolution."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from gigco.models import DisputeStatus, RefundStatus
from gigco.web.schemas import StrictSchema


class DisputeCreateSchema(StrictSchema):
    """Dispute a paid job (its consumer, once, before the review deadline)."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DisputeResolveSchema(StrictSchema):
    """Resolve a job's dispute (operator): a refund from 0 to the price, and why."""

    refund_cents = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))


_BOTH = "Shown to the job's consumer, its assigned worker and the operator."
_OPERATOR = "Shown to the operator only."


class DisputeSchema(ma.Schema):
    """A dispute, as ``gigco.lifecycle.projection.project_dispute`` shows it to the caller: the
    consumer's reason, the operator's resolution and its refund, split into the platform's
    part (its fee's share) and the part taken from the worker's earnings."""

    id = fields.Integer()
    job_id = fields.Integer()
    status = fields.String(metadata={"enum": [s.value for s in DisputeStatus]})
    reason = fields.String(metadata={"description": _BOTH})
    opened_at = fields.String(metadata={"format": "date-time", "description": _BOTH})
    resolved_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    note = fields.String(allow_none=True, metadata={"description": _BOTH})
    refund_cents = fields.Integer(allow_none=True, metadata={"description": _BOTH})
    refund_fee_cents = fields.Integer(allow_none=True, metadata={"description": _BOTH})
    refund_earnings_cents = fields.Integer(allow_none=True, metadata={"description": _BOTH})
    refund_status = fields.String(
        allow_none=True,
        metadata={"enum": [s.value for s in RefundStatus], "description": _BOTH},
    )
    refunded_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    refund_key = fields.String(allow_none=True, metadata={"description": _OPERATOR})
    gateway_refund_id = fields.String(allow_none=True, metadata={"description": _OPERATOR})
