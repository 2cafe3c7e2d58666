"""Health: /healthz (can the system make progress?), /livez and /readyz (this process).

Anyone reads the verdict and which parts are down; only the operator's token reads why
(error text, host names, addresses, revision ids, queue depths and the other facts).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, jsonify
from flask.views import MethodView

from gigco import health
from gigco.web.auth import bearer_token
from gigco.web.blueprint import Blueprint
from gigco.web.errors import envelope
from gigco.web.resources.health.schemas import HealthSchema, LiveSchema
from gigco.web.schemas import errors

blp = Blueprint("health", __name__, description="Health")


def _operator() -> bool:
    """True for the operator's token (compared here: no database needed to read health)."""
    token, admin = bearer_token(), current_app.config["GIGCO"].admin_token
    return bool(token and admin and hmac.compare_digest(token.encode(), admin.encode()))


def _report(parts: tuple[str, ...]) -> Any:
    app = current_app
    result = health.check(app.config["GIGCO"], app.extensions["gigco_read_sessions"], parts=parts)
    if _operator():
        body = result.as_dict()
        why = result.summary()
    else:
        body = {k: v for k, v in result.as_dict(public=True).items() if k not in result.parts}
        body |= {name: {"status": part.status} for name, part in result.parts.items()}
        why = ", ".join(result.down)
    if app.config["GIGCO"].test_clocks:
        body["test_clocks"] = "on"  # a sandbox: say so wherever its health is read
    if result.ok:
        return body
    # A Response, so that the 200 schema does not strip the error envelope.
    verdicts = {k: v for k, v in body.items() if k != "status"}
    error = envelope(503, f"Down: {why.rstrip('.')}.", **verdicts)
    return jsonify(error), 503


@blp.route("/healthz")
class HealthViews(MethodView):
    @blp.response(200, HealthSchema)
    @errors(blp, 503)
    def get(self) -> Any:
        """200 when the system can make progress; else 503 naming each part that is down.

        Each part's facts and reasons are for the operator's token only."""
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
