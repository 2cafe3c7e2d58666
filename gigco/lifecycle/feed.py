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

from gigco.lifecycle.access import Principal
from gigco.models import Notification, Role
from gigco.models.columns import settled_tx

# A feed position: (writing transaction, notification id); (0, 0) is the start.
Cursor = tuple[int, int]


def addressed_to(who: Principal) -> sa.ColumnElement[bool]:
    """The notifications of ``who``, a consumer or a worker."""
    column = Notification.consumer_id if who.role == Role.CONSUMER else Notification.worker_id
    return column == who.id


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
    stmt = (
        sa.select(Notification)
        .where(
            addressed_to(who),
            sa.tuple_(Notification.tx, Notification.id) > sa.tuple_(tx, id_),
            Notification.tx < settled_tx(hold_seconds),
        )
        .order_by(Notification.tx, Notification.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
