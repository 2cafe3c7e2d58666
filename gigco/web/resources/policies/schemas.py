"""Schemas of lifecycle policies: the rules a job runs under."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class PolicySchema(ma.Schema):
    """A lifecycle policy: its version and the values every job pinned to it runs under."""

    version = fields.Integer()
    offer_ttl_seconds = fields.Float()
    opportunity_ttl_seconds = fields.Float()
    match_retry_base_seconds = fields.Float()
    match_max_rounds = fields.Integer()
    review_window_seconds = fields.Float()
    payment_max_attempts = fields.Integer()
    payment_retry_base_seconds = fields.Float()
    fee_rate = fields.String(
        metadata={"description": "the fee's share of the subtotal, as an exact decimal"}
    )
    hourly_rates = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "each category's hourly rate in cents, as jobs are priced"},
    )
    withdrawals = fields.Boolean(
        metadata={"description": "whether the assigned worker may withdraw (false: older policy)"}
    )
    start_grace_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "a scheduled job not started this long after its start is a no-show"
            " (null: older policy, no no-show)"
        },
    )
    overrun_factor = fields.Float(
        allow_none=True,
        metadata={
            "description": "work in progress past its start + estimated hours x this is flagged"
            " as an overrun (null: older policy, never flagged)"
        },
    )
    reliability_rank = fields.Boolean(
        metadata={
            "description": "matching ranks workers of equal rating by fewer withdrawals plus"
            " no-shows first (false: older policy)"
        }
    )
    late_cancel_window_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "a consumer's cancel after assignment within this long of the start"
            " costs the late-cancellation fee (null: older policy, cancels are free)"
        },
    )
    late_cancel_fee_percent = fields.Float(
        allow_none=True,
        metadata={
            "description": "the late-cancellation fee in percent of the subtotal, paid to the"
            " worker (null: older policy, no fee)"
        },
    )
    strike_window_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "matching counts withdrawals and no-shows this recent (null: older"
            " policy, all of them)"
        },
    )
    created_at = fields.String(metadata={"format": "date-time"})
