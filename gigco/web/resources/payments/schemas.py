"""Schemas of a job's payment and its attempts."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class AttemptSchema(ma.Schema):
    """One charge attempt."""

    number = fields.Integer()
    attempted_at = fields.AwareDateTime()
    outcome = fields.Function(lambda a: a.outcome.value)
    detail = fields.String(allow_none=True)


class PaymentSchema(ma.Schema):
    """A job's payment: the charge and how it is split."""

    job_id = fields.Integer()
    status = fields.Function(lambda p: p.status.value)
    amount_cents = fields.Integer()
    fee_cents = fields.Integer()
    worker_earnings_cents = fields.Integer()
    currency = fields.Constant("USD")
    idempotency_key = fields.String()
    succeeded_at = fields.AwareDateTime(allow_none=True)
    attempts = fields.List(fields.Nested(AttemptSchema))
