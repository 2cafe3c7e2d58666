"""The caller's notifications."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from gigco.lifecycle import feed
from gigco.models import Notification, Role
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import reads_replica, session
from gigco.web.pagination import KeysetQuerySchema, Listing, SqlPage
from gigco.web.resources.notifications.schemas import FeedQuerySchema, NotificationSchema
from gigco.web.schemas import errors

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="Notifications")


@blp.route("/notifications")
class NotificationViews(MethodView):
    @reads_replica
    @login_required(Role.CONSUMER, Role.WORKER)
    @blp.doc(security=BEARER)
    @blp.arguments(KeysetQuerySchema(), location="query")
    @blp.response(200, NotificationSchema(many=True))
    @blp.paginate(SqlPage)
    @errors(blp, 401, 403, 422)
    def get(self, query: dict[str, Any]) -> Listing:
        """My notifications, newest first, by page or by cursor. To poll, read the feed."""
        return Listing.of(Notification, feed.newest_first(current_principal()), query=query)


@blp.route("/notifications/feed")
class FeedViews(MethodView):
    @reads_replica
    @login_required(Role.CONSUMER, Role.WORKER)
    @blp.doc(security=BEARER)
    @blp.arguments(FeedQuerySchema(), location="query")
    @blp.response(200, NotificationSchema(many=True))
    @errors(blp, 401, 403, 422)
    def get(self, query: dict[str, Any]) -> list[Notification]:
        """My notifications after a cursor, oldest first: poll with the last ``cursor`` seen.

        A notification appears here only once every transaction that could still write one
        before it has ended, so reading from the last cursor never skips one and never
        repeats one. An empty answer means nothing new: keep the same cursor.
        """
        return feed.read_feed(
            session(),
            current_principal(),
            after=query["after"],
            limit=query["limit"],
            hold_seconds=current_app.config["GIGCO"].feed_hold_seconds,
        )
