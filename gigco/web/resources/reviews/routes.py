"""Reviews of a job by its consumer and its worker."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView

from gigco.lifecycle import actions
from gigco.lifecycle.access import visible_job
from gigco.lifecycle.projection import project_review
from gigco.models import Job, Review
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
    @blp.arguments(ReviewCreateSchema())
    @blp.response(201, ReviewSchema)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, data: dict[str, Any], job_id: int) -> dict[str, Any]:
        """Review the job (its consumer or assigned worker, once each, in review_pending)."""
        who = current_principal()
        review, dues = actions.submit_review(session(), job_id, who, step_context(job_id), **data)
        job = session().get(Job, job_id)  # read and locked by submit_review
        assert job is not None
        shown = project_review(review, job, who)
        commit(dues)
        return shown

    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, ReviewSchema(many=True))
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> list[dict[str, Any]]:
        """The job's reviews, as the caller may see them."""
        who = current_principal()
        job = visible_job(session(), job_id, who)
        reviews = session().scalars(
            sa.select(Review).where(Review.job_id == job_id).order_by(Review.id)
        )
        return [project_review(review, job, who) for review in reviews]
