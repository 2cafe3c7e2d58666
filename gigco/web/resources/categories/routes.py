"""Categories of work and their hourly rates."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from flask.views import MethodView

from gigco.models import Category
from gigco.web.blueprint import Blueprint
from gigco.web.db import session
from gigco.web.resources.categories.schemas import CategorySchema

blp = Blueprint("categories", __name__, url_prefix="/v1", description="Categories of work")


@blp.route("/categories")
class CategoryViews(MethodView):
    @blp.response(200, CategorySchema(many=True))
    def get(self) -> Sequence[Category]:
        """Every category with its hourly rate."""
        return session().scalars(sa.select(Category).order_by(Category.name)).all()
