"""Column helpers shared by the models."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from gigco.db import utcnow

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def enum_column(enum: type[StrEnum], name: str) -> sa.Enum:
    """A VARCHAR holding ``enum``'s values, with a named CHECK constraint."""
    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum),
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def created_at() -> Mapped[dt.datetime]:
    """A creation timestamp set by the application in UTC."""
    return mapped_column(default=utcnow)
