"""Pagination of SQL lists: page numbers (flask-smorest's ``paginate``) and keyset cursors.

Every list is newest first by id. A view returns a ``Listing``: one or more SELECTs of the
same model whose union is the list (a worker's jobs are the jobs they hold plus the jobs
they hold an open opportunity on), each branch read on its own index and limited before
the union, so a page costs O(page) at any table size.

- Page numbers (``?page=&page_size=``): ``X-Pagination`` carries the total, counted only up
  to ``COUNT_CAP`` rows; a longer list reports ``COUNT_CAP`` and its pages stop there.
- Cursors (``?starting_after=<id>`` / ``?ending_before=<id>``, as Stripe does): the page
  after (older than) or before (newer than) that id; no count is made, ``page`` is ignored,
  and ``X-Pagination`` is ``{"has_more": …}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask_smorest import Page
from marshmallow import fields, validate

from gigco.web.db import session
from gigco.web.schemas import StrictSchema

COUNT_CAP = 10_000
KEYSET = -1  # item_count of a cursor page: no total is counted
BIGINT = 2**63 - 1


class KeysetQuerySchema(StrictSchema):
    """Cursor paging, beside ``page``: at most one of the two ids."""

    starting_after = fields.Integer(
        validate=validate.Range(1, BIGINT),
        metadata={"description": "An id from the list: return the items after it (older)."},
    )
    ending_before = fields.Integer(
        validate=validate.Range(1, BIGINT),
        metadata={"description": "An id from the list: return the items before it (newer)."},
    )

    @ma.validates_schema
    def _one_cursor(self, data: dict[str, Any], **kw: Any) -> None:
        if "starting_after" in data and "ending_before" in data:
            raise ma.ValidationError("Pass starting_after or ending_before, not both.")


@dataclass(frozen=True)
class Listing:
    """A list, newest first by ``key``: the union of ``branches`` (SELECTs of one model)."""

    model: Any
    branches: Sequence[sa.Select[Any]]
    starting_after: int | None = None
    ending_before: int | None = None

    @classmethod
    def of(cls, model: Any, *branches: sa.Select[Any], query: dict[str, Any]) -> Listing:
        """A listing of ``branches`` with the cursor (if any) from the parsed ``query``."""
        return cls(model, branches, query.get("starting_after"), query.get("ending_before"))

    @property
    def keyset(self) -> bool:
        """True when a cursor was given."""
        return self.starting_after is not None or self.ending_before is not None

    def _ids(self, *where: sa.ColumnElement[bool], newest_first: bool, limit: int) -> Any:
        key = self.model.id
        order = key.desc() if newest_first else key.asc()
        parts = [
            b.with_only_columns(key).where(*where).order_by(None).order_by(order).limit(limit)
            for b in self.branches
        ]
        if len(parts) == 1:
            return parts[0].subquery()
        return sa.union(*(p.subquery().select() for p in parts)).subquery()

    def rows(self, *, offset: int, limit: int) -> list[Any]:
        """Items ``offset`` … ``offset + limit`` (newest first)."""
        ids = self._ids(newest_first=True, limit=offset + limit)
        stmt = (
            sa.select(self.model)
            .join(ids, self.model.id == ids.c.id)
            .order_by(self.model.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(session().scalars(stmt))

    def count(self) -> int:
        """How many items there are, counting at most ``COUNT_CAP``."""
        ids = self._ids(newest_first=True, limit=COUNT_CAP)
        counted = session().scalar(sa.select(sa.func.count()).select_from(ids)) or 0
        return min(counted, COUNT_CAP)

    def cursor_page(self, limit: int) -> tuple[list[Any], bool]:
        """The page beside the cursor, newest first, and whether more lie beyond it."""
        key = self.model.id
        if self.starting_after is not None:
            where, newest_first = key < self.starting_after, True
        else:
            where, newest_first = key > self.ending_before, False
        ids = self._ids(where, newest_first=newest_first, limit=limit + 1)
        order = key.desc() if newest_first else key.asc()
        stmt = sa.select(self.model).join(ids, key == ids.c.id).order_by(order).limit(limit + 1)
        found = list(session().scalars(stmt))
        more = len(found) > limit
        found = found[:limit]
        return (found if newest_first else found[::-1]), more


class SqlPage(Page):
    """Pages a ``Listing`` (or a plain SELECT) by page number or by cursor."""

    def __init__(self, collection: Any, page_params: Any):
        if isinstance(collection, sa.Select):
            collection = Listing(collection.column_descriptions[0]["entity"], [collection])
        self.has_more = False
        super().__init__(collection, page_params)

    @property
    def items(self) -> list[Any]:
        params, listing = self.page_params, self.collection
        if listing.keyset:
            found, self.has_more = listing.cursor_page(params.page_size)
            params.has_more = self.has_more
            return found
        if params.first_item >= (params.item_count or 0):
            # Past the last item: nothing to read, and a huge ?page= would overflow OFFSET.
            return []
        return listing.rows(offset=params.first_item, limit=params.page_size)

    @property
    def item_count(self) -> int:
        return KEYSET if self.collection.keyset else self.collection.count()
