"""Health: /healthz (can the system make progress?), /livez and /readyz (this process)."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from flask.views import MethodView

from gigco import health
from gigco.web.blueprint import Blueprint
from gigco.web.errors import envelope
from gigco.web.resources.health.schemas import HealthSchema, LiveSchema
from gigco.web.schemas import errors

blp = Blueprint("health", __name__, description="Health")


def _report(parts: tuple[str, ...]) -> Any:
    app = current_app
    result = health.check(app.config["GIGCO"], app.extensions["gigco_read_sessions"], parts=parts)
    body = result.as_dict(public=True)
    if app.config["GIGCO"].test_clocks:
        body["test_clocks"] = "on"  # a sandbox: say so wherever its health is read
    if result.ok:
        return body
    # A Response, so that the 200 schema does not strip the error envelope.
    verdicts = {k: v for k, v in body.items() if k != "status"}
    error = envelope(503, f"Down: {result.summary().rstrip('.')}.", **verdicts)
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
