"""Schemas of webhook endpoints, their deliveries, and the messages GigCo sends."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gigco.models import DeliveryStatus
from gigco.web.schemas import StrictSchema
from gigco.webhooks import EVENT_TYPES, MAX_URL_LENGTH

_TYPES: dict[str, Any] = dict(
    cls_or_instance=fields.String(validate=validate.Length(1, 80)),
    allow_none=True,
    validate=validate.Length(max=len(EVENT_TYPES)),
    metadata={
        "description": "Which job events to send (null or absent: all of them): "
        + ", ".join(sorted(EVENT_TYPES))
    },
)


class EndpointCreateSchema(StrictSchema):
    """Register an endpoint."""

    url = fields.String(
        required=True,
        validate=validate.Length(1, MAX_URL_LENGTH),
        metadata={"description": "An https URL resolving to public addresses"},
    )
    event_types = fields.List(load_default=None, **_TYPES)
    description = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=500)
    )


class EndpointPatchSchema(StrictSchema):
    """Change an endpoint; absent fields stay as they are."""

    url = fields.String(validate=validate.Length(1, MAX_URL_LENGTH))
    event_types = fields.List(**_TYPES)
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    enabled = fields.Boolean()


class WebhookEndpointSchema(ma.Schema):
    """A webhook endpoint (its secret is shown only on creation and rotation)."""

    id = fields.Integer()
    url = fields.String()
    event_types = fields.List(
        fields.String(), allow_none=True, metadata={"description": "null: every event type"}
    )
    description = fields.String(allow_none=True)
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class WebhookEndpointWithSecretSchema(WebhookEndpointSchema):
    """A webhook endpoint with its signing secret."""

    secret = fields.String(metadata={"description": "whsec_ + base64; verify signatures with it"})


class WebhookAttemptSchema(ma.Schema):
    """One HTTP attempt of a delivery."""

    attempted_at = fields.AwareDateTime()
    response_status = fields.Integer(allow_none=True)
    duration_ms = fields.Integer()
    error = fields.String(allow_none=True)


def _status(delivery: Any) -> str:
    status = delivery["status"] if isinstance(delivery, dict) else delivery.status
    return "pending" if status == DeliveryStatus.SENDING else status.value


class WebhookDeliverySchema(ma.Schema):
    """One message to the endpoint and its attempts."""

    id = fields.Integer()
    webhook_id = fields.String(attribute="msg_id")
    event_type = fields.String()
    job_id = fields.Integer(allow_none=True)
    seq = fields.Integer(allow_none=True)
    status = fields.Function(
        _status, metadata={"enum": ["pending", "delivered", "failed"], "type": "string"}
    )
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    finished_at = fields.AwareDateTime(allow_none=True)
    attempts = fields.List(fields.Nested(WebhookAttemptSchema))


class WebhookAcceptedSchema(ma.Schema):
    """A delivery was queued."""

    delivery_id = fields.Integer()


# The body of every message GigCo sends, as an OpenAPI callback of endpoint registration.
_EVENT = {
    "type": "object",
    "description": "The event as GET /v1/jobs/{id}/events shows it to the endpoint's owner",
    "properties": {
        "seq": {"type": "integer"},
        "type": {"type": "string"},
        "from_status": {"type": "string", "nullable": True},
        "to_status": {"type": "string", "nullable": True},
        "actor": {"type": "string"},
        "data": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["type", "timestamp", "data"],
    "properties": {
        "type": {"type": "string", "enum": [*sorted(EVENT_TYPES), "ping"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "data": {
            "type": "object",
            "description": "For job.* types; a ping carries {endpoint_id}",
            "properties": {
                "job_id": {"type": "integer"},
                "seq": {"type": "integer"},
                "event": _EVENT,
                "job": {"$ref": "#/components/schemas/Job"},
            },
        },
    },
}
_HEADERS = {
    name: {"required": True, "schema": {"type": "string"}, "description": text}
    for name, text in (
        ("webhook-id", "The message id: the same on every retry; dedupe on it"),
        ("webhook-timestamp", "Unix seconds of this attempt"),
        ("webhook-signature", "Space-separated v1,<base64 HMAC-SHA256> signatures"),
    )
}
CALLBACKS = {
    "jobEvent": {
        "{$request.body#/url}": {
            "post": {
                "summary": "A job event (Standard Webhooks), per endpoint and job in seq order",
                "parameters": [
                    {"in": "header", "name": name, **spec} for name, spec in _HEADERS.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": MESSAGE_SCHEMA}},
                },
                "responses": {
                    "2XX": {"description": "Delivered"},
                    "410": {"description": "Gone: GigCo disables the endpoint"},
                    "default": {"description": "Retried on GIGCO_WEBHOOK_RETRY_SCHEDULE"},
                },
            }
        }
    }
}
