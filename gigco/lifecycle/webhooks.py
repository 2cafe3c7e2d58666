"""Outbound webhooks (Standard Webhooks): endpoints, the outbox, the URL policy, delivery rules.

Plain functions over a Session. The outbox rows are written by ``write_outbox`` in the
transaction that writes the history event; a task claims a row (compare-and-set to
``sending`` with a lease in ``next_attempt_at``), commits, sends, and records the attempt in a
new transaction. ``next_attempt_at`` is the only deadline: the sweep arms rows due soon and
re-kicks rows overdue by the grace (a lost task, an expired lease).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased
from standardwebhooks.webhooks import Webhook

from gigco.config import Settings
from gigco.db import enqueue_after_commit
from gigco.lifecycle.access import Principal
from gigco.lifecycle.errors import Conflict, Invalid, NotFound
from gigco.lifecycle.notify import notify_consumer, notify_worker
from gigco.lifecycle.projection import project_event, project_job
from gigco.models import (
    DeliveryStatus,
    Job,
    JobEvent,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

log = logging.getLogger(__name__)

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
        "payment_attempt_refused",
        "review_received",
    )
)
PING = "ping"
MAX_URL_LENGTH = 2048
MAX_BODY_STORED = 1024
USER_AGENT = "GigCo-Webhooks/1"

# --- the URL policy (SSRF) ---------------------------------------------------------------


class UnsafeUrl(Invalid):
    """A webhook URL that is malformed or points somewhere GigCo must not send to."""

    def __init__(self, reason: str):
        super().__init__(reason, errors={"url": [reason]})
        self.reason = reason


def check_url_syntax(url: str, *, allow_private: bool) -> tuple[str, int]:
    """The host and port of ``url`` if it is an absolute https (or, when allowed, http) URL."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    schemes = ("https", "http") if allow_private else ("https",)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("The URL is not a valid absolute URL.") from None
    if parts.scheme not in schemes:
        raise UnsafeUrl(f"The URL must start with {' or '.join(s + '://' for s in schemes)}.")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The URL must name a host and carry no credentials.")
    if any(c.isspace() for c in url) or not url.isprintable():
        raise UnsafeUrl("The URL must not contain spaces or control characters.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why GigCo must not connect to ``address``, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return f"{ip} is a link-local, multicast or unspecified address."
    if not ip.is_global and not allow_private:
        return f"{ip} is not a public address."
    return None


def resolve_url(url: str, *, allow_private: bool) -> list[str]:
    """Every address ``url``'s host resolves to, all checked; UnsafeUrl otherwise."""
    host, port = check_url_syntax(url, allow_private=allow_private)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"The host {host!r} does not resolve.") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    for address in addresses:
        reason = address_refusal(address, allow_private=allow_private)
        if reason:
            raise UnsafeUrl(f"The URL resolves to {reason}")
    if not addresses:
        raise UnsafeUrl(f"The host {host!r} does not resolve.")
    return addresses


# --- endpoints ---------------------------------------------------------------------------


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
    """Register an endpoint for ``who`` after checking its URL and event types."""
    resolve_url(url, allow_private=settings.webhook_allow_private_networks)
    endpoint = WebhookEndpoint(
        owner_role=who.role,
        owner_id=None if who.role == Role.OPERATOR else who.id,
        url=url,
        event_types=_check_event_types(event_types),
        description=description,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


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
    """Change an endpoint's url, event_types, description or enabled flag."""
    endpoint = endpoint_of(session, who, endpoint_id)
    if "url" in changes:
        resolve_url(changes["url"], allow_private=settings.webhook_allow_private_networks)
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


# --- the outbox --------------------------------------------------------------------------

_sender: Callable[[list[int]], object] | None = None


def use_sender(sender: Callable[[list[int]], object]) -> None:
    """Register how new deliveries are kicked after commit (the task layer does, on import)."""
    global _sender
    _sender = sender


def kick_after_commit(session: Session, delivery_ids: Iterable[int]) -> None:
    """Send the delivery tasks for ``delivery_ids`` once ``session`` commits (else the sweep)."""
    ids = list(delivery_ids)
    if ids and _sender is not None:
        sender = _sender
        enqueue_after_commit(session, lambda: sender(ids))


def _msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _viewer(endpoint: WebhookEndpoint) -> Principal:
    return Principal(endpoint.owner_role, endpoint.owner_id)


def _audience(job_id: int) -> sa.ColumnElement[bool]:
    """Endpoints whose owner may see job ``job_id`` now (access.visible_jobs_filter, inverted)."""
    holds_opportunity = sa.exists().where(
        Opportunity.job_id == job_id,
        Opportunity.worker_id == WebhookEndpoint.owner_id,
        Opportunity.status == OpportunityStatus.PENDING,
    )
    return sa.or_(
        WebhookEndpoint.owner_role == Role.OPERATOR,
        sa.and_(
            WebhookEndpoint.owner_role == Role.CONSUMER,
            WebhookEndpoint.owner_id == Job.consumer_id,
        ),
        sa.and_(
            WebhookEndpoint.owner_role == Role.WORKER,
            sa.or_(WebhookEndpoint.owner_id == Job.worker_id, holds_opportunity),
        ),
    )


def message(event_type: str, timestamp: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
    """A webhook body: ``{type, timestamp, data}``."""
    return {"type": event_type, "timestamp": timestamp.isoformat(), "data": data}


def write_outbox(session: Session, job_id: int, event: JobEvent) -> list[int]:
    """Write one delivery per enabled endpoint that may see the job and wants ``event``.

    Called where the history event is written, in its transaction (one query when nobody
    listens); each payload is built only through the projection, for the owner's role.
    """
    event_type = f"job.{event.type}"
    endpoints = session.scalars(
        sa.select(WebhookEndpoint)
        .join(Job, Job.id == job_id)
        .where(WebhookEndpoint.enabled, _audience(job_id))
        .order_by(WebhookEndpoint.id)
    ).all()
    endpoints = [e for e in endpoints if e.event_types is None or event_type in e.event_types]
    if not endpoints:
        return []
    job = session.get(Job, job_id)
    assert job is not None
    rows = [
        {
            "endpoint_id": endpoint.id,
            "job_id": job.id,
            "seq": event.seq,
            "msg_id": _msg_id(),
            "event_type": event_type,
            "payload": message(
                event_type,
                event.created_at,
                {
                    "job_id": job.id,
                    "seq": event.seq,
                    "event": project_event(event, job, _viewer(endpoint)),
                    "job": project_job(job, _viewer(endpoint)),
                },
            ),
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": event.created_at,
            "created_at": event.created_at,
        }
        for endpoint in endpoints
    ]
    ids = list(
        session.scalars(sa.insert(WebhookDelivery).returning(WebhookDelivery.id), rows).all()
    )
    kick_after_commit(session, ids)
    return ids


def ping(session: Session, who: Principal, endpoint_id: int, *, now: dt.datetime) -> int:
    """Queue a ``ping`` message to the caller's endpoint; returns the delivery id."""
    endpoint = endpoint_of(session, who, endpoint_id)
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        msg_id=_msg_id(),
        event_type=PING,
        payload=message(PING, now, {"endpoint_id": endpoint.id}),
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    kick_after_commit(session, [delivery.id])
    return delivery.id


def deliveries_of(
    session: Session, who: Principal, endpoint_id: int, *, limit: int = 100
) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first."""
    endpoint = endpoint_of(session, who, endpoint_id)
    stmt = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def attempts_of(session: Session, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of each delivery, oldest first."""
    found: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        stmt = (
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.id)
        )
        for attempt in session.scalars(stmt):
            found[attempt.delivery_id].append(attempt)
    return found


def retry_delivery(
    session: Session, endpoint_id: int, delivery_id: int, *, now: dt.datetime
) -> WebhookDelivery:
    """Send a delivery again now, with a fresh retry schedule (not while it is being sent)."""
    delivery = session.scalar(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
    )
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} not found.")
    moved = session.scalar(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status != DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.PENDING, tries=0, next_attempt_at=now, finished_at=None)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    if moved is None:
        raise Conflict("This delivery is being sent right now; retry once it has finished.")
    session.refresh(delivery)
    kick_after_commit(session, [delivery_id])
    return delivery


# --- claiming, sending, recording --------------------------------------------------------


def lease_seconds(settings: Settings) -> float:
    """How long a claimed delivery stays ours: the connect and read timeouts, and a margin."""
    return 2 * settings.webhook_timeout_seconds + 5


def _earlier_open() -> sa.ColumnElement[bool]:
    """An earlier message of the same job to the same endpoint is still pending or sending."""
    earlier = aliased(WebhookDelivery)
    return sa.exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.job_id == WebhookDelivery.job_id,
        earlier.seq < WebhookDelivery.seq,
        earlier.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
    )


@dataclass(frozen=True)
class Claimed:
    """A delivery this task owns until ``lease_until``: what it takes to send it."""

    delivery_id: int
    endpoint_id: int
    url: str
    msg_id: str
    body: str
    secrets: tuple[str, ...]
    created_at: dt.datetime
    lease_until: dt.datetime


def claim(
    session: Session, delivery_id: int, *, settings: Settings, now: dt.datetime
) -> Claimed | None:
    """Take a due delivery for sending (compare-and-set to ``sending`` with a lease).

    None when it is not due, already taken or finished, or waits for an earlier message of
    its job. A delivery to a disabled endpoint fails here instead.
    """
    until = now + dt.timedelta(seconds=lease_seconds(settings))
    row = session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
            WebhookDelivery.next_attempt_at <= now,
            ~_earlier_open(),
        )
        .values(status=DeliveryStatus.SENDING, next_attempt_at=until)
        .returning(
            WebhookDelivery.endpoint_id,
            WebhookDelivery.msg_id,
            WebhookDelivery.payload,
            WebhookDelivery.created_at,
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    endpoint = session.get(WebhookEndpoint, row.endpoint_id)
    assert endpoint is not None  # the delivery's foreign key cascades
    if not endpoint.enabled:
        _finish(session, delivery_id, DeliveryStatus.FAILED, now)
        return None
    return Claimed(
        delivery_id=delivery_id,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        msg_id=row.msg_id,
        body=json.dumps(row.payload, separators=(",", ":"), sort_keys=True),
        secrets=tuple(signing_secrets(endpoint, now)),
        created_at=row.created_at,
        lease_until=until,
    )


@dataclass(frozen=True)
class Answer:
    """What one attempt came to: the receiver's status (None if none) or an error."""

    attempted_at: dt.datetime
    duration_ms: int
    status: int | None = None
    body: str | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


def signature_headers(claimed: Claimed, at: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers for ``claimed`` sent at ``at``: one signature per secret."""
    signatures = [
        Webhook(secret).sign(msg_id=claimed.msg_id, timestamp=at, data=claimed.body)
        for secret in claimed.secrets
    ]
    return {
        "webhook-id": claimed.msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def send(claimed: Claimed, *, settings: Settings, now: dt.datetime) -> Answer:
    """POST the message once: re-check the URL's addresses, no redirects, at most 1 KiB read."""
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        resolve_url(claimed.url, allow_private=settings.webhook_allow_private_networks)
    except UnsafeUrl as refused:
        return Answer(now, took(), error=f"refused: {refused.reason}"[:500])
    timeout = settings.webhook_timeout_seconds
    try:
        with requests.post(
            claimed.url,
            data=claimed.body.encode(),
            headers=signature_headers(claimed, now),
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            body = response.raw.read(MAX_BODY_STORED, decode_content=True)
            return Answer(
                now,
                took(),
                status=response.status_code,
                body=body.decode("utf-8", "replace")[:MAX_BODY_STORED],
            )
    except requests.RequestException as error:
        return Answer(now, took(), error=f"{type(error).__name__}: {error}"[:500])


def _finish(session: Session, delivery_id: int, status: DeliveryStatus, now: dt.datetime) -> None:
    session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(status=status, next_attempt_at=None, finished_at=now)
        .execution_options(synchronize_session=False)
    )


def _next_of(session: Session, delivery: WebhookDelivery) -> list[int]:
    """The job's next pending message to the same endpoint, now free to go."""
    if delivery.job_id is None:
        return []
    following = session.scalar(
        sa.select(WebhookDelivery.id)
        .where(
            WebhookDelivery.endpoint_id == delivery.endpoint_id,
            WebhookDelivery.job_id == delivery.job_id,
            WebhookDelivery.seq > delivery.seq,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .order_by(WebhookDelivery.seq)
        .limit(1)
    )
    return [following] if following is not None else []


def _disable(session: Session, endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.enabled, endpoint.disabled_reason = False, reason[:200]
    text = f"Your webhook endpoint {endpoint.url[:300]} was disabled: {reason}."
    if endpoint.owner_role == Role.CONSUMER and endpoint.owner_id is not None:
        notify_consumer(session, endpoint.owner_id, "webhook_disabled", text[:500])
    elif endpoint.owner_role == Role.WORKER and endpoint.owner_id is not None:
        notify_worker(session, endpoint.owner_id, "webhook_disabled", text[:500])
    log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id, "why": reason})


@dataclass(frozen=True)
class Recorded:
    """What recording an attempt decided: the delivery's outcome and what is free to go next."""

    outcome: str  # delivered, retry, failed, disabled, lost (the lease was taken over)
    kick: list[int]
    created_at: dt.datetime | None = None
    retry_at: dt.datetime | None = None


def record_attempt(
    session: Session, claimed: Claimed, answer: Answer, *, settings: Settings, now: dt.datetime
) -> Recorded:
    """Store the attempt and decide: delivered, retried on the schedule, failed or disabled."""
    session.add(
        WebhookAttempt(
            delivery_id=claimed.delivery_id,
            attempted_at=answer.attempted_at,
            response_status=answer.status,
            duration_ms=answer.duration_ms,
            error=answer.error,
            response_body=answer.body,
        )
    )
    delivery = session.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    if delivery is None:
        return Recorded("lost", [])
    if delivery.status != DeliveryStatus.SENDING or delivery.next_attempt_at != claimed.lease_until:
        return Recorded("lost", [])  # someone re-claimed it after our lease; theirs counts
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
    assert endpoint is not None
    delivery.tries += 1
    if answer.delivered:
        delivery.status, delivery.next_attempt_at, delivery.finished_at = (
            DeliveryStatus.DELIVERED,
            None,
            now,
        )
        endpoint.consecutive_failures = 0
        session.flush()
        return Recorded("delivered", _next_of(session, delivery), delivery.created_at)
    if answer.status == 410:
        delivery.status, delivery.next_attempt_at, delivery.finished_at = (
            DeliveryStatus.FAILED,
            None,
            now,
        )
        _disable(session, endpoint, "the receiver answered 410 Gone")
        session.flush()
        return Recorded("disabled", _next_of(session, delivery))
    schedule = settings.webhook_retry_schedule
    if delivery.tries <= len(schedule):
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now + dt.timedelta(seconds=schedule[delivery.tries - 1])
        session.flush()
        return Recorded("retry", [], retry_at=delivery.next_attempt_at)
    delivery.status, delivery.next_attempt_at, delivery.finished_at = (
        DeliveryStatus.FAILED,
        None,
        now,
    )
    endpoint.consecutive_failures += 1
    outcome = "failed"
    if endpoint.enabled and endpoint.consecutive_failures >= settings.webhook_disable_after:
        _disable(session, endpoint, f"{endpoint.consecutive_failures} deliveries failed in a row")
        outcome = "disabled"
    session.flush()
    return Recorded(outcome, _next_of(session, delivery))


# --- the sweep ---------------------------------------------------------------------------

BATCH = 1000


def due_deliveries(
    session: Session, *, now: dt.datetime, horizon_seconds: float, grace_seconds: float
) -> list[tuple[int, dt.datetime | None]]:
    """Deliveries to send: ``(id, at)`` with ``at`` None for now.

    Those due before ``now + horizon`` and not yet overdue are armed (sent with an ETA, or at
    once when due); those overdue by the grace (a lost task, an expired lease) get
    ``next_attempt_at = now`` so each is re-kicked once per grace. Both read the partial index
    on ``next_attempt_at``; a message waiting for an earlier one of its job is left alone.
    """
    until = now + dt.timedelta(seconds=horizon_seconds)
    overdue_before = now - dt.timedelta(seconds=grace_seconds)
    armed = session.execute(
        sa.select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
        .where(
            WebhookDelivery.next_attempt_at.is_not(None),
            WebhookDelivery.next_attempt_at > now,
            WebhookDelivery.next_attempt_at <= until,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            ~_earlier_open(),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(BATCH)
    ).all()
    overdue = (
        sa.select(WebhookDelivery.id)
        .where(
            WebhookDelivery.next_attempt_at.is_not(None),
            WebhookDelivery.next_attempt_at <= overdue_before,
            ~_earlier_open(),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    kicked = session.scalars(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(overdue))
        .values(next_attempt_at=now)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    return [(i, at) for i, at in armed] + [(i, None) for i in kicked]
