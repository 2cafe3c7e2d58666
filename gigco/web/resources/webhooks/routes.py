"""Webhook endpoints per party: register, read, change, rotate the secret, ping, deliveries."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from gigco import clock, webhooks
from gigco.config import Settings
from gigco.models import WebhookEndpoint
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import commit, release, session
from gigco.web.resources.webhooks.schemas import (
    CALLBACKS,
    EndpointCreateSchema,
    EndpointPatchSchema,
    WebhookAcceptedSchema,
    WebhookDeliverySchema,
    WebhookEndpointSchema,
    WebhookEndpointWithSecretSchema,
)
from gigco.web.schemas import errors

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1",
    description="Outbound webhooks (Standard Webhooks): job events sent to your URL, signed",
)


def _settings() -> Settings:
    return current_app.config["GIGCO"]


@blp.route("/webhook-endpoints")
class EndpointViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, WebhookEndpointSchema(many=True))
    @errors(blp, 401)
    def get(self) -> list[WebhookEndpoint]:
        """The caller's webhook endpoints."""
        return webhooks.endpoints_of(session(), current_principal())

    @login_required()
    @blp.doc(security=BEARER, callbacks=CALLBACKS)
    @blp.arguments(EndpointCreateSchema())
    @blp.response(201, WebhookEndpointWithSecretSchema)
    @errors(blp, 401, 409, 422)
    def post(self, data: dict[str, Any]) -> WebhookEndpoint:
        """Register an endpoint; every visible job event is sent to it, signed with ``secret``."""
        who = current_principal()
        release()  # no transaction held while the URL's host is looked up
        endpoint = webhooks.create_endpoint(
            session(), who, settings=_settings(), now=clock.now(), **data
        )
        commit()
        return endpoint


@blp.route("/webhook-endpoints/<id:endpoint_id>")
class EndpointByIdViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, WebhookEndpointSchema)
    @errors(blp, 401, 404)
    def get(self, endpoint_id: int) -> WebhookEndpoint:
        """One of the caller's endpoints."""
        return webhooks.endpoint_of(session(), current_principal(), endpoint_id)

    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(EndpointPatchSchema())
    @blp.response(200, WebhookEndpointSchema)
    @errors(blp, 401, 404, 422)
    def patch(self, data: dict[str, Any], endpoint_id: int) -> WebhookEndpoint:
        """Change an endpoint's url, event types, description, or enable it again."""
        who = current_principal()
        release()  # no transaction held while a new URL's host is looked up
        endpoint = webhooks.update_endpoint(
            session(), who, endpoint_id, data, settings=_settings(), now=clock.now()
        )
        commit()
        return endpoint

    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(204)
    @errors(blp, 401, 404)
    def delete(self, endpoint_id: int) -> None:
        """Delete an endpoint and its deliveries."""
        webhooks.delete_endpoint(session(), current_principal(), endpoint_id)
        commit()


@blp.route("/webhook-endpoints/<id:endpoint_id>/rotate-secret")
class RotateSecretViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, WebhookEndpointWithSecretSchema)
    @errors(blp, 401, 404)
    def post(self, endpoint_id: int) -> WebhookEndpoint:
        """A new secret; the old one keeps signing beside it for the overlap period."""
        endpoint = webhooks.rotate_secret(
            session(), current_principal(), endpoint_id, settings=_settings(), now=clock.now()
        )
        commit()
        return endpoint


@blp.route("/webhook-endpoints/<id:endpoint_id>/ping")
class PingViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(202, WebhookAcceptedSchema)
    @errors(blp, 401, 404)
    def post(self, endpoint_id: int) -> dict[str, int]:
        """Send a ``ping`` message to the endpoint."""
        delivery_id = webhooks.ping(session(), current_principal(), endpoint_id, now=clock.now())
        commit()
        return {"delivery_id": delivery_id}


@blp.route("/webhook-endpoints/<id:endpoint_id>/deliveries")
class DeliveryViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, WebhookDeliverySchema(many=True))
    @errors(blp, 401, 404)
    def get(self, endpoint_id: int) -> list[dict[str, Any]]:
        """The endpoint's latest 100 deliveries, newest first, with their attempts."""
        found = webhooks.deliveries_of(session(), current_principal(), endpoint_id)
        attempts = webhooks.attempts_of(session(), [d.id for d in found])
        return [{**_row(d), "attempts": attempts[d.id]} for d in found]


def _row(delivery: Any) -> dict[str, Any]:
    return {
        name: getattr(delivery, name)
        for name in (
            "id",
            "msg_id",
            "event_type",
            "job_id",
            "seq",
            "status",
            "next_attempt_at",
            "created_at",
            "finished_at",
        )
    }


@blp.route("/webhook-endpoints/<id:endpoint_id>/deliveries/<id:delivery_id>/retry")
class RetryViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(202, WebhookAcceptedSchema)
    @errors(blp, 401, 404, 409)
    def post(self, endpoint_id: int, delivery_id: int) -> dict[str, int]:
        """Send a delivery again now, with a fresh retry schedule."""
        endpoint = webhooks.endpoint_of(session(), current_principal(), endpoint_id)
        webhooks.retry_delivery(session(), endpoint.id, delivery_id, now=clock.now())
        commit()
        return {"delivery_id": delivery_id}
