"""Pagination of SQL queries with flask-smorest's ``paginate``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest import Page

from gigco.web.db import session


class SqlPage(Page):
    """Pages a SELECT with LIMIT/OFFSET; the total comes from one COUNT."""

    @property
    def items(self) -> list[Any]:
        params = self.page_params
        if params.first_item >= (params.item_count or 0):
            # Past the last item: nothing to read, and a huge ?page= would overflow OFFSET.
            return []
        stmt = self.collection.offset(params.first_item).limit(params.page_size)
        return list(session().scalars(stmt))

    @property
    def item_count(self) -> int:
        count = sa.select(sa.func.count()).select_from(self.collection.order_by(None).subquery())
        return session().scalar(count) or 0
