"""Liveness: is the database reachable, and the broker?"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app, jsonify
from flask.views import MethodView

from gigco.tasks import app as celery_app
from gigco.web.blueprint import Blueprint
from gigco.web.db import session
from gigco.web.errors import envelope
from gigco.web.resources.health.schemas import HealthSchema
from gigco.web.schemas import errors

blp = Blueprint("health", __name__, description="Health")


def _check_database() -> str:
    try:
        session().execute(sa.text("SELECT 1"))
        return "ok"
    except sa.exc.SQLAlchemyError:
        return "unreachable"


def _check_broker() -> str:
    try:
        broker_url = current_app.config["GIGCO"].broker_url
        with celery_app.connection_for_write(broker_url) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:
        return "unreachable"


@blp.route("/healthz")
class HealthViews(MethodView):
    @blp.response(200, HealthSchema)
    @errors(blp, 503)
    def get(self) -> Any:
        """200 when the database and the broker answer, else 503."""
        body = {"database": _check_database(), "broker": _check_broker()}
        ok = all(v == "ok" for v in body.values())
        if not ok:
            # A Response, so that the 200 schema does not strip the error envelope.
            error = envelope(503, "The database or the broker is unreachable.", **body)
            return jsonify(error), 503
        return {"status": "ok", **body}
