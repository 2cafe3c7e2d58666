"""Reviews of a job by its consumer and its worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from gigco.lifecycle import actions
from gigco.lifecycle.access import visible_job
from gigco.models import Review
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.db import commit, session, step_context
from gigco.web.schemas import StrictSchema, errors

blp = Blueprint("reviews", __name__, url_prefix="/v1/jobs", description="Reviews")


class ReviewCreateSchema(StrictSchema):
    """Review the other side of a job."""

    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ReviewSchema(ma.Schema):
    """A review."""

    id = fields.Integer()
    job_id = fields.Integer()
    author_role = fields.Function(lambda r: r.author_role.value)
    author_id = fields.Integer()
    rating = fields.Integer()
    comment = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


@blp.route("/<int:job_id>/reviews")
class ReviewViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(ReviewCreateSchema)
    @blp.response(201, ReviewSchema)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, data: dict[str, Any], job_id: int) -> Review:
        """Review the job (its consumer or assigned worker, once each, in review_pending)."""
        review, dues = actions.submit_review(
            session(), job_id, current_principal(), step_context(), **data
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
