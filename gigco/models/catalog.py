"""Job categories and their hourly rates (seeded by a migration)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gigco.db import Base


class Category(Base):
    """A kind of work, such as plumbing, with the rate a job in it is priced at."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hourly_rate_cents: Mapped[int]

    __table_args__ = (sa.CheckConstraint("hourly_rate_cents > 0", name="rate_positive"),)
