"""Column helpers shared by the models."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
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


class current_tx(sa.sql.expression.FunctionElement[int]):
    """The writing transaction's id: PostgreSQL's xid8 as a bigint; 0 on SQLite.

    SQLite has one writer at a time, so there ids are taken in commit order already.
    """

    type = sa.BigInteger()
    inherit_cache = True


class settled_tx(sa.sql.expression.FunctionElement[int]):
    """Every transaction with a lower id has ended: rows written below it are final.

    PostgreSQL: the current snapshot's xmin. SQLite: no limit.
    """

    type = sa.BigInteger()
    inherit_cache = True


@compiles(current_tx)
def _current_tx(element: current_tx, compiler: Any, **kw: Any) -> str:
    return "0"


@compiles(current_tx, "postgresql")
def _current_tx_pg(element: current_tx, compiler: Any, **kw: Any) -> str:
    return "pg_current_xact_id()::text::bigint"


@compiles(settled_tx)
def _settled_tx(element: settled_tx, compiler: Any, **kw: Any) -> str:
    return "9223372036854775807"


@compiles(settled_tx, "postgresql")
def _settled_tx_pg(element: settled_tx, compiler: Any, **kw: Any) -> str:
    return "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
