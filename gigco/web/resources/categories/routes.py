"""Categories of work and their hourly rates."""

from __future__ import annotations

from collections.abc import Sequence

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from gigco.models import Category
from gigco.web.db import session

blp = Blueprint("categories", __name__, url_prefix="/v1", description="Categories of work")


class CategorySchema(ma.Schema):
    """A category."""

    id = fields.Integer()
    name = fields.String()
    hourly_rate_cents = fields.Integer()


@blp.route("/categories")
class CategoryViews(MethodView):
    @blp.response(200, CategorySchema(many=True))
    def get(self) -> Sequence[Category]:
        """Every category with its hourly rate."""
        return session().scalars(sa.select(Category).order_by(Category.name)).all()
