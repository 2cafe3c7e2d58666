"""A worker's pending opportunities."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from sqlalchemy.orm import joinedload, load_only, raiseload

from gigco import clock
from gigco.models import Job, Opportunity, OpportunityStatus, Role, Worker
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import session
from gigco.web.resources.opportunities.schemas import OpportunitySchema
from gigco.web.schemas import errors

blp = Blueprint("opportunities", __name__, url_prefix="/v1", description="Opportunities")


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
                .options(
                    joinedload(Opportunity.job),
                    # The caller's own place: their distance to each job's approximate place.
                    joinedload(Opportunity.worker).options(
                        load_only(Worker.lat, Worker.lng), raiseload(Worker.skills)
                    ),
                )
                .where(
                    Opportunity.worker_id == current_principal().id,
                    Opportunity.status == OpportunityStatus.PENDING,
                    _not_lapsed(),
                )
                .order_by(Opportunity.expires_at)
            )
            .all()
        )


def _not_lapsed() -> sa.ColumnElement[bool]:
    """Not expired: by the database's clock, or on a test clock's job still pending (its
    clock's advance expires it)."""
    live = Opportunity.expires_at > clock.now()
    if current_app.config["GIGCO"].test_clocks:
        return sa.or_(live, Opportunity.job.has(Job.test_clock_id.is_not(None)))
    return live
