"""Schemas of a job's payment and its attempts, as the projection shows them to the caller."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from gigco.models import AttemptOutcome, PaymentStatus
from gigco.models.payments import PAYMENT_KINDS

_OPERATOR = "Only to the operator."
_CONSUMER = "Only to the job's consumer and the operator."


class AttemptSchema(ma.Schema):
    """One charge attempt (``gigco.lifecycle.projection.ATTEMPT_FIELDS``: who sees what)."""

    number = fields.Integer()
    attempted_at = fields.String(metadata={"format": "date-time"})
    outcome = fields.String(
        metadata={"enum": [o.value for o in AttemptOutcome], "description": _CONSUMER}
    )
    detail = fields.String(
        allow_none=True, metadata={"description": f"The gateway's text. {_OPERATOR}"}
    )
    idempotency_key = fields.String(
        allow_none=True,
        metadata={"description": f"The key of the charge intent this attempt tried. {_OPERATOR}"},
    )


class PaymentSchema(ma.Schema):
    """A job's payment, as ``gigco.lifecycle.projection.project_payment`` shows it to the caller.

    The consumer sees the charge and how it splits, the assigned worker what they earn; only
    the operator sees the idempotency key and the gateway's text about each attempt. A refund
    splits like the charge: the platform gives back its fee's share, the rest comes out of
    the worker's earnings.
    """

    job_id = fields.Integer()
    kind = fields.String(
        metadata={
            "enum": list(PAYMENT_KINDS),
            "description": "What is charged: the job's price (job), or the late-cancellation"
            " fee of a job its consumer cancelled late (late_cancel_fee: no platform fee, all"
            " of it the worker's earnings).",
        }
    )
    status = fields.String(metadata={"enum": [s.value for s in PaymentStatus]})
    amount_cents = fields.Integer(metadata={"description": f"What the consumer pays. {_CONSUMER}"})
    fee_cents = fields.Integer(metadata={"description": f"The platform's fee. {_CONSUMER}"})
    worker_earnings_cents = fields.Integer(
        metadata={
            "description": "What the worker earns: the amount less the fee (the job's "
            "subtotal). Not to a worker other than the assigned one."
        }
    )
    currency = fields.String()
    idempotency_key = fields.String(metadata={"description": _OPERATOR})
    succeeded_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    refunded_cents = fields.Integer(metadata={"description": f"Refunded in all. {_CONSUMER}"})
    refunded_fee_cents = fields.Integer(
        metadata={
            "description": f"The part of the refund the platform's fee gave back. {_CONSUMER}"
        }
    )
    refunded_earnings_cents = fields.Integer(
        metadata={
            "description": "The part of the refund taken from the worker's earnings. Not to a "
            "worker other than the assigned one."
        }
    )
    attempts = fields.List(fields.Nested(AttemptSchema))
