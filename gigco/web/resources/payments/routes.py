"""A job's payment and its attempts."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from gigco.lifecycle.access import visible_job
from gigco.lifecycle.errors import NotFound
from gigco.models import Payment
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.db import session
from gigco.web.schemas import errors

blp = Blueprint("payments", __name__, url_prefix="/v1/jobs", description="Payments")


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


@blp.route("/<int:job_id>/payment")
class PaymentViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, PaymentSchema)
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> Payment:
        """The job's payment; 404 before the first attempt."""
        visible_job(session(), job_id, current_principal())
        payment = session().scalar(sa.select(Payment).where(Payment.job_id == job_id))
        if payment is None:
            raise NotFound(f"Job {job_id} has no payment yet.")
        return payment
