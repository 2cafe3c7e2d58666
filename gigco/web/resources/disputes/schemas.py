"""Schemas of a job's dispute and its resolution."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from gigco.web.schemas import StrictSchema


class DisputeCreateSchema(StrictSchema):
    """Dispute a paid job (its consumer, once, before the review deadline)."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DisputeResolveSchema(StrictSchema):
    """Resolve a job's dispute (operator): a refund from 0 to the price, and why."""

    refund_cents = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))


def _earnings_part(d: object) -> int | None:
    refund, fee = getattr(d, "refund_cents", None), getattr(d, "refund_fee_cents", None)
    return None if refund is None else refund - (fee or 0)


class DisputeSchema(ma.Schema):
    """A dispute: the consumer's reason, the operator's resolution and its refund, split into
    the platform's part (its fee's share) and the part taken from the worker's earnings."""

    id = fields.Integer()
    job_id = fields.Integer()
    status = fields.Function(lambda d: d.status.value)
    reason = fields.String()
    opened_at = fields.AwareDateTime()
    resolved_at = fields.AwareDateTime(allow_none=True)
    note = fields.String(allow_none=True)
    refund_cents = fields.Integer(allow_none=True)
    refund_fee_cents = fields.Integer(allow_none=True)
    refund_earnings_cents = fields.Function(_earnings_part)
    refund_status = fields.Function(lambda d: d.refund_status.value if d.refund_status else None)
    refunded_at = fields.AwareDateTime(allow_none=True)
