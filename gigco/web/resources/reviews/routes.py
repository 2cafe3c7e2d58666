"""Reviews of a job by its consumer and its worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from flask.views import MethodView

from gigco.lifecycle import actions
from gigco.lifecycle.access import visible_job
from gigco.models import Review
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import commit, session, step_context
from gigco.web.resources.reviews.schemas import ReviewCreateSchema, ReviewSchema
from gigco.web.schemas import errors

blp = Blueprint("reviews", __name__, url_prefix="/v1/jobs", description="Reviews")


@blp.route("/<id:job_id>/reviews")
class ReviewViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(ReviewCreateSchema)
    @blp.response(201, ReviewSchema)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, data: dict[str, Any], job_id: int) -> Review:
        """Review the job (its consumer or assigned worker, once each, in review_pending)."""
        review, dues = actions.submit_review(
            session(), job_id, current_principal(), step_context(job_id), **data
        )
        commit(dues)
        return review

    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, ReviewSchema(many=True))
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> Sequence[Review]:
        """The job's reviews."""
        visible_job(session(), job_id, current_principal())
        return (
            session()
            .scalars(sa.select(Review).where(Review.job_id == job_id).order_by(Review.id))
            .all()
        )
