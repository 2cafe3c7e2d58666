"""Lifecycle policies: the rules a job was created under, immutable and numbered."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gigco.db import Base
from gigco.models.columns import JSONType, created_at


class LifecyclePolicy(Base):
    """One set of lifecycle values (timers, budgets, fee rate, hourly rates); never updated.

    A new version is written only when the values differ from every stored one: the values'
    hash is unique, and writers insert with ``ON CONFLICT DO NOTHING``.
    """

    __tablename__ = "lifecycle_policies"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    values_hash: Mapped[str] = mapped_column(
        sa.String(64), unique=True, comment="sha256 of the values' canonical JSON"
    )
    values: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = created_at()
