"""Schemas of health: every part's verdict, and this process's liveness."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class HealthSchema(ma.Schema):
    """Every part's verdict."""

    status = fields.String()
    down = fields.List(fields.String())
    checked_at = fields.String()
    version = fields.String(
        metadata={"description": "the GigCo release this API process runs (operator only)"}
    )
    database = fields.Dict()
    migrations = fields.Dict()
    broker = fields.Dict()
    workers = fields.Dict()
    beat = fields.Dict()
    test_clocks = fields.String(metadata={"description": "`on` when GIGCO_TEST_CLOCKS=1"})


class LiveSchema(ma.Schema):
    """This process answers."""

    status = fields.String()
