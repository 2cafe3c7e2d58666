"""Heartbeats: when each worker last finished a task and each beat last sent a sweep."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gigco.db import Base


class Heartbeat(Base):
    """One row per worker node (``worker:<nodename>``) or beat host (``beat:<hostname>``)."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), comment="worker or beat")
    started_at: Mapped[dt.datetime | None] = mapped_column(
        comment="when the process started (a new one is healthy until its bound has passed)"
    )
    beat_at: Mapped[dt.datetime | None] = mapped_column(
        comment="a worker: its last task finished; a beat: its last sweep sent"
    )
    seen_at: Mapped[dt.datetime | None] = mapped_column(
        comment="a worker: when its main process last said it was alive"
    )
    in_flight: Mapped[int | None] = mapped_column(
        comment="a worker: tasks it was executing when it last said so"
    )
    queues: Mapped[str | None] = mapped_column(
        sa.String(255), comment="a worker: the queues it consumes, comma-separated"
    )
    version: Mapped[str | None] = mapped_column(
        sa.String(32), comment="the GigCo release the process runs (none: before 0.2.0)"
    )
