"""The console's webhook pages: endpoints (owner, enabled, failing) and their deliveries."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from gigco import clock, webhooks
from gigco.models import WebhookDelivery, WebhookEndpoint
from gigco.web.db import commit, reads_replica
from gigco.web.db import session as db_session
from gigco.web.ops.blueprint import blp

log = logging.getLogger(__name__)


@blp.get("/webhooks")
@reads_replica
def webhook_endpoints() -> str:
    """Every webhook endpoint: its owner, whether it is enabled, and failures in a row."""
    endpoints = db_session().scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    return render_template("ops/webhooks.html", endpoints=list(endpoints))


@blp.get("/webhooks/<id:endpoint_id>")
def webhook_endpoint(endpoint_id: int) -> str:
    """One endpoint's latest deliveries with their attempts, and a retry button each."""
    endpoint = db_session().get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404, f"Webhook endpoint {endpoint_id} not found.")
    deliveries = list(
        db_session().scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(100)
        )
    )
    attempts = webhooks.attempts_of(db_session(), [d.id for d in deliveries])
    return render_template(
        "ops/webhook.html", endpoint=endpoint, deliveries=deliveries, attempts=attempts
    )


@blp.post("/webhooks/<id:endpoint_id>/deliveries/<id:delivery_id>/retry")
def retry_webhook(endpoint_id: int, delivery_id: int) -> ResponseReturnValue:
    """Send a delivery again now, as ``POST …/deliveries/<id>/retry`` does."""
    webhooks.retry_delivery(db_session(), endpoint_id, delivery_id, now=clock.now())
    commit()
    log.info("ops webhook retry", extra={"delivery_id": delivery_id})
    flash(f"Delivery {delivery_id} will be sent again now.")
    return redirect(url_for("ops.webhook_endpoint", endpoint_id=endpoint_id), 303)
