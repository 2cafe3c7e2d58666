"""A job's dispute: opened by its consumer, resolved by an operator with a refund."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from gigco.lifecycle import disputes
from gigco.lifecycle.access import visible_job
from gigco.lifecycle.errors import NotFound
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.projection import project_dispute
from gigco.models import Dispute, Job
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
    @blp.arguments(DisputeCreateSchema())
    @blp.response(201, DisputeSchema)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, data: dict[str, Any], job_id: int) -> dict[str, Any]:
        """Dispute the job (its consumer): once, after it is paid, before the review deadline."""
        who = current_principal()
        dispute = disputes.open_dispute(
            session(), job_id, who, step_context(job_id), reason=data["reason"]
        )
        commit()
        return _shown(dispute, who)

    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, DisputeSchema)
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> dict[str, Any]:
        """The job's dispute as the caller may see it; 404 when it has none."""
        who = current_principal()
        job = visible_job(session(), job_id, who)
        dispute = disputes.dispute_of(session(), job_id)
        if dispute is None:
            raise NotFound(f"Job {job_id} has no dispute.")
        return project_dispute(dispute, job, who)


@blp.route("/<id:job_id>/dispute/resolve")
class DisputeResolveView(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(DisputeResolveSchema())
    @blp.response(200, DisputeSchema)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, data: dict[str, Any], job_id: int) -> dict[str, Any]:
        """Resolve the job's dispute (operator): a refund of 0 to the price, taken once
        through the gateway after this answer (``refund_status`` pending, then succeeded)."""
        dispute = resolve(session(), job_id, data["refund_cents"], data["note"])
        commit()
        return _shown(dispute, current_principal())


def resolve(s: Any, job_id: int, refund_cents: int, note: str) -> Dispute:
    """Resolve as the caller and send the refund once the caller commits (also for /ops)."""
    dispute = disputes.resolve_dispute(
        s, job_id, current_principal(), step_context(job_id), refund_cents=refund_cents, note=note
    )
    if dispute.refund_cents:
        send_refund_after_commit(s, dispute.id)
    return dispute


def _shown(dispute: Dispute, who: Principal) -> dict[str, Any]:
    """A dispute as ``who`` may see it (through the projection)."""
    job = session().get(Job, dispute.job_id)
    assert job is not None
    return project_dispute(dispute, job, who)
