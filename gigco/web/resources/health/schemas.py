"""Schemas of liveness: is the database reachable, and the broker?"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class HealthSchema(ma.Schema):
    """What is reachable."""

    status = fields.String()
    database = fields.String()
    broker = fields.String()
