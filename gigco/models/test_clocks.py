"""Test clocks: a sandbox's simulated time, on which the jobs created on it run."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gigco.db import Base
from gigco.models.columns import created_at


class TestClock(Base):
    """A clock standing at ``frozen_time`` until its owner advances it (to ``advance_to``)."""

    __tablename__ = "test_clocks"
    __test__ = False  # not a pytest test class

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(
        sa.String(64), comment="the actor name of the party that made it (consumer:<id>, …)"
    )
    name: Mapped[str | None] = mapped_column(sa.String(200))
    frozen_time: Mapped[dt.datetime]
    advance_to: Mapped[dt.datetime | None] = mapped_column(
        comment="where an advance under way is going; NULL when the clock is ready"
    )
    deleted_at: Mapped[dt.datetime | None] = mapped_column(
        comment="a deleted clock stays, so its jobs stay off real time"
    )
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (sa.Index("ix_test_clocks_owner_id", "owner", "id"),)
