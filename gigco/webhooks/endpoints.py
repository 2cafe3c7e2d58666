"""Webhook endpoints per party: registration, reads, changes, secrets and their rotation."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.config import Settings
from gigco.lifecycle.errors import Conflict, Invalid, NotFound
from gigco.lifecycle.principals import Principal
from gigco.models import JobStatus, Role, WebhookEndpoint
from gigco.webhooks.urls import resolve_url

# Every history event type a job can write, as a webhook type (``job.<event type>``).
EVENT_TYPES: frozenset[str] = frozenset(
    f"job.{name}"
    for name in (
        *(status.value for status in JobStatus if status != JobStatus.DRAFT),
        "created",
        "payment_retry",
        "matching_round_started",
        "matching_round_ended",
        "opportunity_offered",
        "opportunity_expired",
        "opportunity_declined",
        "worker_withdrew",
        "worker_no_show",
        "overrun_flagged",
        "payment_attempt_refused",
        "late_cancel_fee_charged",
        "late_cancel_fee_refused",
        "late_cancel_fee_failed",
        "review_received",
        "dispute_opened",
        "dispute_resolved",
        "refunded",
    )
)


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _owner_filter(who: Principal) -> sa.ColumnElement[bool]:
    if who.role == Role.OPERATOR:
        return WebhookEndpoint.owner_role == Role.OPERATOR
    return sa.and_(WebhookEndpoint.owner_role == who.role, WebhookEndpoint.owner_id == who.id)


def _check_event_types(event_types: list[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    unknown = sorted(set(event_types) - EVENT_TYPES)
    if unknown:
        raise Invalid(
            "Unknown event types.",
            errors={"event_types": [f"Unknown event type: {t}." for t in unknown]},
        )
    return sorted(set(event_types))


def create_endpoint(
    session: Session,
    who: Principal,
    *,
    url: str,
    event_types: list[str] | None,
    description: str | None,
    settings: Settings,
    now: dt.datetime,
) -> WebhookEndpoint:
    """Register an endpoint for ``who`` after checking its URL and event types; at most
    ``webhook_max_endpoints`` per owner (Conflict beyond).

    The URL's DNS lookup comes before the first statement, so a caller holding no
    transaction (the API releases its own first) holds none while DNS answers.
    """
    resolve_url(url, allow_private=settings.webhook_allow_private_networks)
    event_types = _check_event_types(event_types)
    _take_owner_lock(session, who)
    owned = session.scalar(sa.select(sa.func.count()).where(_owner_filter(who))) or 0
    if owned >= settings.webhook_max_endpoints:
        raise Conflict(
            f"You have {owned} webhook endpoints, the most allowed "
            f"({settings.webhook_max_endpoints}); delete one first."
        )
    endpoint = WebhookEndpoint(
        owner_role=who.role,
        owner_id=None if who.role == Role.OPERATOR else who.id,
        url=url,
        event_types=event_types,
        description=description,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def _take_owner_lock(session: Session, who: Principal) -> None:
    """Order one owner's registrations (PostgreSQL: a transaction-scoped advisory lock), so
    that two at once cannot both pass the cap."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite runs one writer at a time
    owner = f"webhook-endpoints:{who.role.value}:{who.id or 0}"
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(owner, 0))))


def endpoints_of(session: Session, who: Principal) -> list[WebhookEndpoint]:
    """The caller's own endpoints, oldest first."""
    stmt = sa.select(WebhookEndpoint).where(_owner_filter(who)).order_by(WebhookEndpoint.id)
    return list(session.scalars(stmt))


def endpoint_of(session: Session, who: Principal, endpoint_id: int) -> WebhookEndpoint:
    """The caller's endpoint ``endpoint_id``; NotFound for anyone else's."""
    endpoint = session.scalar(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, _owner_filter(who))
    )
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} not found.")
    return endpoint


def update_endpoint(
    session: Session,
    who: Principal,
    endpoint_id: int,
    changes: dict[str, Any],
    *,
    settings: Settings,
    now: dt.datetime,
) -> WebhookEndpoint:
    """Change an endpoint's url, event_types, description or enabled flag (a new URL is
    looked up before the first statement, as in ``create_endpoint``)."""
    if "url" in changes:
        resolve_url(changes["url"], allow_private=settings.webhook_allow_private_networks)
    endpoint = endpoint_of(session, who, endpoint_id)
    if "url" in changes:
        endpoint.url = changes["url"]
    if "event_types" in changes:
        endpoint.event_types = _check_event_types(changes["event_types"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
        if endpoint.enabled:
            endpoint.disabled_reason, endpoint.consecutive_failures = None, 0
        else:
            endpoint.disabled_reason = "disabled by its owner"
    endpoint.updated_at = now
    session.flush()
    return endpoint


def delete_endpoint(session: Session, who: Principal, endpoint_id: int) -> None:
    """Delete the caller's endpoint and its deliveries."""
    session.delete(endpoint_of(session, who, endpoint_id))
    session.flush()


def rotate_secret(
    session: Session, who: Principal, endpoint_id: int, *, settings: Settings, now: dt.datetime
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for the overlap."""
    endpoint = endpoint_of(session, who, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + dt.timedelta(
        seconds=settings.webhook_secret_overlap_seconds
    )
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    session.flush()
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets that sign a message sent at ``now``: the current one, and the previous one
    while its overlap lasts."""
    found = [endpoint.secret]
    if endpoint.previous_secret and (endpoint.previous_secret_until or now) > now:
        found.append(endpoint.previous_secret)
    return found
