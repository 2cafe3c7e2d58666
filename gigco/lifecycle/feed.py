"""Reading a caller's notifications: the list, and the feed that never skips or repeats.

The feed hands out only rows whose writing transaction is below the oldest one of this
database still running and open for less than GIGCO_FEED_HOLD_SECONDS (``settled_tx``),
ordered by ``(tx, id)``: a row whose transaction commits late still lands after any cursor
a reader has been given, so reading from the last cursor seen never skips a notification
and never repeats one. An id cursor alone would skip it.
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

    A transaction of another database never holds the feed back; one of ours holds it back
    for at most ``hold_seconds`` (GIGCO_FEED_HOLD_SECONDS). If such a transaction commits a
    notification after that, the feed has moved past it: it is in the list
    (GET /v1/notifications), not in the feed.
    """
    tx, id_ = after
    params = {"who": who.id, "tx": tx, "id": id_, "hold": hold_seconds, "limit": limit}
    return list(session.scalars(_feed_statement(who.role), params))


@built_once
def _feed_statement(role: Role) -> sa.Select[Notification]:
    """``read_feed``'s query for a consumer or a worker (every poll runs it: built once)."""
    bind = sa.bindparam
    after = sa.tuple_(bind("tx", type_=sa.BigInteger()), bind("id", type_=sa.BigInteger()))
    return (
        sa.select(Notification)
        .where(
            _recipient(role) == bind("who", type_=sa.BigInteger()),
            sa.tuple_(Notification.tx, Notification.id) > after,
            Notification.tx < settled_tx(bind("hold", type_=sa.Double())),
        )
        .order_by(Notification.tx, Notification.id)
        .limit(bind("limit", type_=sa.Integer()))
    )
