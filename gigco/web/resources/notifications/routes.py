"""The caller's notifications."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from gigco.models import Notification, Role
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.pagination import SqlPage
from gigco.web.schemas import StrictSchema, errors

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="Notifications")


class NotificationQuerySchema(StrictSchema):
    """Inbox polling: only notifications newer than ``after_id``."""

    after_id = fields.Integer(
        validate=validate.Range(0, 2**63 - 1),
        metadata={
            "description": "Only notifications with a larger id, for polling. Ids are taken "
            "when a notification is written, not when it commits, so one with a lower id can "
            "appear a moment after a higher one: poll from an id a few seconds old and "
            "de-duplicate by id."
        },
    )


class NotificationSchema(ma.Schema):
    """A message to the caller."""

    id = fields.Integer()
    kind = fields.String()
    message = fields.String()
    job_id = fields.Integer(allow_none=True)
    data = fields.Dict()
    created_at = fields.AwareDateTime()


@blp.route("/notifications")
class NotificationViews(MethodView):
    @login_required(Role.CONSUMER, Role.WORKER)
    @blp.doc(security=BEARER)
    @blp.arguments(NotificationQuerySchema, location="query")
    @blp.response(200, NotificationSchema(many=True))
    @blp.paginate(SqlPage)
    @errors(blp, 401, 403, 422)
    def get(self, query: dict[str, int]) -> sa.Select:
        """My notifications, newest first; ``after_id`` returns only newer ones."""
        who = current_principal()
        column = Notification.consumer_id if who.role == Role.CONSUMER else Notification.worker_id
        stmt = sa.select(Notification).where(column == who.id)
        if "after_id" in query:
            stmt = stmt.where(Notification.id > query["after_id"])
        return stmt.order_by(Notification.id.desc())
