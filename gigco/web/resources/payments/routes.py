"""A job's payment and its attempts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView

from gigco.lifecycle.access import visible_job
from gigco.lifecycle.errors import NotFound
from gigco.lifecycle.projection import project_payment
from gigco.models import Payment
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import session
from gigco.web.resources.payments.schemas import PaymentSchema
from gigco.web.schemas import errors

blp = Blueprint("payments", __name__, url_prefix="/v1/jobs", description="Payments")


@blp.route("/<id:job_id>/payment")
class PaymentViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, PaymentSchema)
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> dict[str, Any]:
        """The job's payment (its price, or a late cancel's fee) as the caller may see it; 404
        while it has none (the price's is made by its first attempt, a fee's by the cancel)."""
        who = current_principal()
        job = visible_job(session(), job_id, who)
        payment = session().scalar(sa.select(Payment).where(Payment.job_id == job_id))
        if payment is None:
            raise NotFound(f"Job {job_id} has no payment yet.")
        return project_payment(payment, job, who)
