"""Counters kept by database triggers (migration 0008), so that reading them costs the same
at any table size: jobs per status and history events per kind.

Each counter is split over ``SHARDS`` rows by job id (``job_id % SHARDS``), so that
concurrent transitions of different jobs rarely wait on one row; a reader sums the shards.
The triggers write them in the same transaction as the row they count, on every path that
writes ``jobs`` or ``job_events`` (the API, steps, operator SQL, COPY), with no statement
or round trip of the caller's.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gigco.db import Base

SHARDS = 16


class JobStatusCount(Base):
    """How many jobs are in ``status`` among those whose id falls in ``shard``."""

    __tablename__ = "job_status_counts"

    status: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(sa.BigInteger)


class JobEventCount(Base):
    """How many history events of this type and from/to status (``""`` for none) were ever
    written for jobs in ``shard``; deleting events does not lower it (a Prometheus counter)."""

    __tablename__ = "job_event_counts"

    type: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    from_status: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    to_status: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(sa.BigInteger)
