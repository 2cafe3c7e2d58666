"""Column helpers shared by the models."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column

from gigco import clock

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
    return mapped_column(default=clock.now)


class current_tx(sa.sql.expression.FunctionElement[int]):
    """The writing transaction's id: PostgreSQL's xid8 as a bigint; 0 on SQLite.

    SQLite has one writer at a time, so there ids are taken in commit order already.
    """

    type = sa.BigInteger()
    inherit_cache = True


class settled_tx(sa.sql.expression.FunctionElement[int]):
    """Every transaction of this database with a lower id has ended, or has been open for
    longer than ``hold_seconds``: rows written below it are final (or given up on).

    PostgreSQL: the lowest id among the current snapshot's running transactions, leaving
    out those known to be open past the hold or not to write here; with none left, the
    snapshot's xmax. A running transaction is left out when

    - pg_stat_activity shows it running in another database (every role reads each
      backend's database and transaction id), or open past the hold (``xact_start``: only
      for our own role's backends, or with ``pg_read_all_stats``; another role's reads as
      NULL), or
    - its id is below ``given_up_below``: the id of a transaction that committed a row more
      than the hold ago (ids are handed out in time order, so a lower one has been open at
      least that long). This needs no privilege: another role's transaction holds a row back
      for at most the hold after that row was written.

    A transaction that ended after our snapshot is not in pg_stat_activity and is kept:
    that errs on holding back.

    On a hot standby (``pg_is_in_recovery()``) a snapshot lists no running transaction
    (PostgreSQL keeps the primary's in ``subxip``, which ``pg_current_snapshot()`` does not
    show), so the lowest running id would read as none and the point as the snapshot's xmax,
    past transactions still open on the primary. There it is the snapshot's xmin (every
    lower id had ended when the replayed WAL was written), or just above ``given_up_below``
    when that is higher: at most what the primary's rule gives on the same snapshot, so a
    replica holds back at least as much and gives up on nothing the primary would not.
    SQLite: no limit.
    """

    type = sa.BigInteger()
    inherit_cache = True

    def __init__(
        self,
        hold_seconds: float | sa.ColumnElement[float],
        given_up_below: int | sa.ColumnElement[int] = 0,
    ):
        if not isinstance(hold_seconds, sa.ColumnElement):
            hold_seconds = sa.literal(float(hold_seconds), sa.Double)
        if not isinstance(given_up_below, sa.ColumnElement):
            given_up_below = sa.literal(int(given_up_below), sa.BigInteger)
        super().__init__(hold_seconds, given_up_below)


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
    hold, given_up_below = (compiler.process(c, **kw) for c in element.clauses)
    # One subquery (an InitPlan, computed once per statement, not per row: pg_is_in_recovery
    # is volatile) on the statement's own snapshot.
    return (
        "(SELECT CASE WHEN pg_is_in_recovery() THEN"
        " greatest(pg_snapshot_xmin(pg_current_snapshot())::text::bigint,"
        f" COALESCE({given_up_below}, 0) + 1)"
        " ELSE COALESCE((SELECT min(x::text::bigint)"
        " FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
        f" WHERE x::text::bigint > COALESCE({given_up_below}, 0)"
        " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a"
        " WHERE a.backend_xid::text::bigint = mod(x::text::bigint, 4294967296)"
        " AND (a.datname <> current_database()"
        f" OR a.xact_start < clock_timestamp() - make_interval(secs => {hold})))),"
        " pg_snapshot_xmax(pg_current_snapshot())::text::bigint) END)"
    )
