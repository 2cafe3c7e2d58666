"""Reading a caller's notifications: the list, and the feed that never skips or repeats.

The feed hands out only rows whose writing transaction is below the oldest one of this
database still running and open for less than GIGCO_FEED_HOLD_SECONDS (``settled_tx``),
ordered by ``(tx, id)``: a row whose transaction commits late still lands after any cursor
a reader has been given, so reading from the last cursor seen never skips a notification
and never repeats one. An id cursor alone would skip it.

How long a transaction has been open is read from pg_stat_activity where our database role
may (its own backends: ``xact_start``); another role's in this database (a migration, an
operator's psql session) is known to be open past the hold once one of the reader's
notifications written after it is older than the hold (``given_up_below``): no
notification is held back longer than the hold after it was written, whatever role holds a
transaction open.

Read from a hot standby (GIGCO_READ_DATABASE_URL), the settled point is the standby
snapshot's xmin instead (``settled_tx``): a lagging replica hands a notification out later,
never past one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import built_once
from gigco.lifecycle.principals import Principal
from gigco.models import Notification, Role
from gigco.models.columns import settled_tx

# A feed position: (writing transaction, notification id); (0, 0) is the start.
Cursor = tuple[int, int]


def _recipient(role: Role) -> sa.orm.InstrumentedAttribute[int | None]:
    """The column naming a notification's consumer or worker."""
    return Notification.consumer_id if role == Role.CONSUMER else Notification.worker_id


def addressed_to(who: Principal) -> sa.ColumnElement[bool]:
    """The notifications of ``who``, a consumer or a worker."""
    return _recipient(who.role) == who.id


def newest_first(who: Principal) -> sa.Select[Notification]:
    """All of ``who``'s notifications, newest first (for paging, not polling)."""
    return sa.select(Notification).where(addressed_to(who)).order_by(Notification.id.desc())


def read_feed(
    session: Session, who: Principal, *, after: Cursor, limit: int, hold_seconds: float
) -> list[Notification]:
    """``who``'s settled notifications after ``after``, oldest first, at most ``limit``.

    A transaction in another database never holds the feed back; one here holds a
    notification back for at most ``hold_seconds`` (GIGCO_FEED_HOLD_SECONDS): ours from its
    start, another role's (whose start pg_stat_activity hides from us) from when the
    notification was written. If such a transaction commits a notification after that, the
    feed has moved past it: it is in the list (GET /v1/notifications), not in the feed.
    """
    tx, id_ = after
    params = {"who": who.id, "tx": tx, "id": id_, "hold": hold_seconds, "limit": limit}
    return list(session.scalars(_feed_statement(who.role), params))


def _given_up_below(role: Role) -> sa.ScalarSelect[int]:
    """The id of the newest transaction that wrote one of the reader's notifications more than
    the hold ago: every transaction with a lower id has been open longer than the hold."""
    bind = sa.bindparam
    aged = sa.func.clock_timestamp() - sa.func.make_interval(
        0, 0, 0, 0, 0, 0, bind("hold", type_=sa.Double())
    )
    mine = sa.orm.aliased(Notification)  # not the feed's own rows: no correlation
    recipient = getattr(mine, _recipient(role).key)
    return (
        sa.select(mine.tx)
        .where(recipient == bind("who", type_=sa.BigInteger()), mine.created_at < aged)
        .order_by(mine.tx.desc())
        .limit(1)
        .scalar_subquery()
    )


@built_once
def _feed_statement(role: Role) -> sa.Select[Notification]:
    """``read_feed``'s query for a consumer or a worker (every poll runs it: built once)."""
    bind = sa.bindparam
    after = sa.tuple_(bind("tx", type_=sa.BigInteger()), bind("id", type_=sa.BigInteger()))
    settled = settled_tx(bind("hold", type_=sa.Double()), _given_up_below(role))
    return (
        sa.select(Notification)
        .where(
            _recipient(role) == bind("who", type_=sa.BigInteger()),
            sa.tuple_(Notification.tx, Notification.id) > after,
            Notification.tx < settled,
        )
        .order_by(Notification.tx, Notification.id)
        .limit(bind("limit", type_=sa.Integer()))
    )
