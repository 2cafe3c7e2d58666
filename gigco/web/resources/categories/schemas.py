"""Schemas of categories of work and their hourly rates."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class CategorySchema(ma.Schema):
    """A category."""

    id = fields.Integer()
    name = fields.String()
    hourly_rate_cents = fields.Integer()
