"""Schemas of the test clock resource."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gigco.lifecycle.projection import project_test_clock
from gigco.models import TestClock
from gigco.web.schemas import StrictSchema


class _InUtc(StrictSchema):
    @ma.post_load
    def _in_utc(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["frozen_time"] = data["frozen_time"].astimezone(dt.UTC)
        return data


class TestClockCreateSchema(_InUtc):
    """Create a test clock standing at ``frozen_time``."""

    __test__ = False

    frozen_time = fields.AwareDateTime(
        required=True, metadata={"description": "ISO 8601 with offset; within two years of now"}
    )
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))


class TestClockAdvanceSchema(_InUtc):
    """Advance a test clock to ``frozen_time``."""

    __test__ = False

    frozen_time = fields.AwareDateTime(
        required=True,
        metadata={"description": "later than the clock's time, at most two years after it"},
    )


class TestClockSchema(ma.Schema):
    """A test clock: ``status`` is ``advancing`` until an advance is done, then ``ready``."""

    __test__ = False

    id = fields.Integer()
    name = fields.String(allow_none=True)
    frozen_time = fields.String(metadata={"format": "date-time"})
    status = fields.String(metadata={"enum": ["ready", "advancing"]})
    advancing_to = fields.String(allow_none=True, metadata={"format": "date-time"})
    created_at = fields.String(metadata={"format": "date-time"})

    @ma.pre_dump
    def _project(self, test_clock: TestClock | dict[str, Any], **_: Any) -> dict[str, Any]:
        if isinstance(test_clock, TestClock):
            return project_test_clock(test_clock)
        return test_clock
