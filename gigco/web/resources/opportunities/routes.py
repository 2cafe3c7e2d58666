"""A worker's pending opportunities."""

from __future__ import annotations

from collections.abc import Sequence

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields
from sqlalchemy.orm import joinedload

from gigco.db import utcnow
from gigco.models import Opportunity, OpportunityStatus, Role
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.db import session
from gigco.web.schemas import errors

blp = Blueprint("opportunities", __name__, url_prefix="/v1", description="Opportunities")


class JobSummarySchema(ma.Schema):
    """What a worker needs to decide."""

    id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    category = fields.Function(lambda job: job.category.name)
    location = fields.Function(lambda job: {"lat": job.lat, "lng": job.lng})
    scheduled_start = fields.AwareDateTime()
    estimated_hours = fields.Float()
    earnings_cents = fields.Integer(attribute="subtotal_cents")
    currency = fields.String()


class OpportunitySchema(ma.Schema):
    """An open offer of a job to the calling worker."""

    id = fields.Integer()
    job_id = fields.Integer()
    round = fields.Integer()
    status = fields.Function(lambda o: o.status.value)
    distance_km = fields.Float()
    offered_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()
    job = fields.Nested(JobSummarySchema)


@blp.route("/opportunities")
class OpportunityViews(MethodView):
    @login_required(Role.WORKER)
    @blp.doc(security=BEARER)
    @blp.response(200, OpportunitySchema(many=True))
    @errors(blp, 401, 403)
    def get(self) -> Sequence[Opportunity]:
        """My pending opportunities, soonest to expire first."""
        return (
            session()
            .scalars(
                sa.select(Opportunity)
                .options(joinedload(Opportunity.job))
                .where(
                    Opportunity.worker_id == current_principal().id,
                    Opportunity.status == OpportunityStatus.PENDING,
                    Opportunity.expires_at > utcnow(),
                )
                .order_by(Opportunity.expires_at)
            )
            .all()
        )
