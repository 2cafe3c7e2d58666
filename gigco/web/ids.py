"""Row ids in URLs: ``<id:job_id>`` matches only ids a BIGINT column can hold.

PostgreSQL compares a larger number and finds no row; SQLite's driver cannot bind it at
all (``OverflowError``). Refusing it at routing makes both a 404 before any query.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map

MAX_ROW_ID = 2**63 - 1


class RowIdConverter(IntegerConverter):
    """A non-negative integer up to ``MAX_ROW_ID``; anything larger matches no route."""

    def __init__(self, map: Map, max: int = MAX_ROW_ID) -> None:
        super().__init__(map, min=0, max=max)
