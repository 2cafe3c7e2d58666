"""A job's dispute: opened by its consumer, resolved by an operator with a refund."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from gigco.lifecycle import disputes
from gigco.lifecycle.access import visible_job
from gigco.lifecycle.errors import NotFound
from gigco.models import Dispute
from gigco.tasks.refunds import send_refund_after_commit
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import commit, session, step_context
from gigco.web.resources.disputes.schemas import (
    DisputeCreateSchema,
    DisputeResolveSchema,
    DisputeSchema,
)
from gigco.web.schemas import errors

blp = Blueprint("disputes", __name__, url_prefix="/v1/jobs", description="Disputes and refunds")


@blp.route("/<id:job_id>/dispute")
class DisputeViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(DisputeCreateSchema)
    @blp.response(201, DisputeSchema)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, data: dict[str, Any], job_id: int) -> Dispute:
        """Dispute the job (its consumer): once, after it is paid, before the review deadline."""
        dispute = disputes.open_dispute(
            session(), job_id, current_principal(), step_context(), reason=data["reason"]
        )
        commit()
        return dispute

    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, DisputeSchema)
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> Dispute:
        """The job's dispute; 404 when it has none."""
        visible_job(session(), job_id, current_principal())
        dispute = disputes.dispute_of(session(), job_id)
        if dispute is None:
            raise NotFound(f"Job {job_id} has no dispute.")
        return dispute


@blp.route("/<id:job_id>/dispute/resolve")
class DisputeResolveView(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(DisputeResolveSchema)
    @blp.response(200, DisputeSchema)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, data: dict[str, Any], job_id: int) -> Dispute:
        """Resolve the job's dispute (operator): a refund of 0 to the price, taken once
        through the gateway after this answer (``refund_status`` pending, then succeeded)."""
        dispute = resolve(session(), job_id, data["refund_cents"], data["note"])
        commit()
        return dispute


def resolve(s: Any, job_id: int, refund_cents: int, note: str) -> Dispute:
    """Resolve as the caller and send the refund once the caller commits (also for /ops)."""
    dispute = disputes.resolve_dispute(
        s, job_id, current_principal(), step_context(), refund_cents=refund_cents, note=note
    )
    if dispute.refund_cents:
        send_refund_after_commit(s, dispute.id)
    return dispute
