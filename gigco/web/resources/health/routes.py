"""Health: /healthz (can the system make progress?), /livez and /readyz (this process)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from gigco import health
from gigco.web.errors import envelope
from gigco.web.schemas import errors

blp = Blueprint("health", __name__, description="Health")


class HealthSchema(ma.Schema):
    """Every part's verdict."""

    status = fields.String()
    down = fields.List(fields.String())
    checked_at = fields.String()
    database = fields.Dict()
    migrations = fields.Dict()
    broker = fields.Dict()
    workers = fields.Dict()
    beat = fields.Dict()


class LiveSchema(ma.Schema):
    """This process answers."""

    status = fields.String()


def _report(parts: tuple[str, ...]) -> Any:
    app = current_app
    result = health.check(app.config["GIGCO"], app.extensions["gigco_read_sessions"], parts=parts)
    body = result.as_dict()
    if result.ok:
        return body
    # A Response, so that the 200 schema does not strip the error envelope.
    parts = {k: v for k, v in body.items() if k != "status"}
    error = envelope(503, f"Down: {result.summary().rstrip('.')}.", **parts)
    return jsonify(error), 503


@blp.route("/healthz")
class HealthViews(MethodView):
    @blp.response(200, HealthSchema)
    @errors(blp, 503)
    def get(self) -> Any:
        """200 when the system can make progress; else 503 naming each part that is down."""
        return _report(health.PARTS)


@blp.route("/readyz")
class ReadyViews(MethodView):
    @blp.response(200, HealthSchema)
    @errors(blp, 503)
    def get(self) -> Any:
        """200 when this API process can serve: database migrated, broker reachable."""
        return _report(health.READY_PARTS)


@blp.route("/livez")
class LiveViews(MethodView):
    @blp.response(200, LiveSchema)
    def get(self) -> Any:
        """200 while this API process answers (it touches nothing else)."""
        return {"status": "ok"}
