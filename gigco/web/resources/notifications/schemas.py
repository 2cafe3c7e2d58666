"""Schemas of the caller's notifications."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gigco.lifecycle.projection import project_notification
from gigco.web.auth import current_principal
from gigco.web.schemas import StrictSchema

BIGINT = 2**63 - 1
CURSOR = re.compile(r"(\d{1,19})-(\d{1,19})")


class Cursor(fields.String):
    """A feed position, ``<tx>-<id>``, as a notification's ``cursor`` gives it: a string in
    the OpenAPI document, read as the pair of numbers."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kw: Any) -> str | None:
        if isinstance(value, tuple):
            return f"{value[0]}-{value[1]}"
        return super()._serialize(value, attr, obj, **kw)

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kw: Any
    ) -> tuple[int, int]:
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        match = CURSOR.fullmatch(value)
        if match is None or max(int(match[1]), int(match[2])) > BIGINT:
            raise ma.ValidationError("Not a cursor: pass a notification's 'cursor', or 0-0.")
        return int(match[1]), int(match[2])


class FeedQuerySchema(StrictSchema):
    """Where to read the feed from, and how much."""

    after = Cursor(
        load_default=(0, 0),
        metadata={
            "description": "The last cursor you have seen; 0-0 (the default) is the start.",
            "pattern": r"^\d{1,19}-\d{1,19}$",
        },
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class NotificationSchema(ma.Schema):
    """A message to the caller."""

    id = fields.Integer()
    kind = fields.String()
    message = fields.String()
    job_id = fields.Integer(allow_none=True)
    data = fields.Function(
        lambda n: project_notification(n, current_principal()),
        metadata={"description": "As gigco.lifecycle.projection shows it to the recipient."},
    )
    created_at = fields.AwareDateTime()
    cursor = fields.Function(
        lambda n: f"{n.tx}-{n.id}",
        metadata={"description": "Pass it as the feed's ``after`` to read what came after."},
    )
