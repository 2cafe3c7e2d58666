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
    idempotency_key = fields.String(allow_none=True)


class PaymentSchema(ma.Schema):
    """A job's payment: the charge and how it is split; a refund splits the same way (the
    platform gives back its fee's share, the rest comes out of the worker's earnings)."""

    job_id = fields.Integer()
    status = fields.Function(lambda p: p.status.value)
    amount_cents = fields.Integer()
    fee_cents = fields.Integer()
    worker_earnings_cents = fields.Integer()
    currency = fields.Constant("USD")
    idempotency_key = fields.String()
    succeeded_at = fields.AwareDateTime(allow_none=True)
    refunded_cents = fields.Integer()
    refunded_fee_cents = fields.Integer()
    refunded_earnings_cents = fields.Function(lambda p: p.refunded_cents - p.refunded_fee_cents)
    attempts = fields.List(fields.Nested(AttemptSchema))
