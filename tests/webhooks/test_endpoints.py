"""Webhook endpoints: CRUD per party, validation, the SSRF policy, leases and the sweep."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import webhooks
from gigco.config import Settings
from gigco.lifecycle.principals import Principal
from gigco.models import DeliveryStatus, Role, WebhookDelivery, WebhookEndpoint
from gigco.tasks.dispatch import arming_horizon
from tests import factories
from tests.api.helpers import assert_error
from tests.harness.http import Api
from tests.harness.polling import wait_for
from tests.harness.webhooks import Receiver, register


def test_crud_is_per_party_and_another_partys_endpoint_is_404(api: Api, receiver: Receiver) -> None:
    alice, bob = api.consumer(), api.consumer()
    hook = register(api, alice["headers"], receiver.url(), description="mine")
    assert hook["event_types"] is None and hook["enabled"] is True
    path = f"/v1/webhook-endpoints/{hook['id']}"
    listed = api.client.get("/v1/webhook-endpoints", headers=alice["headers"]).json
    assert [e["id"] for e in listed] == [hook["id"]]
    assert "secret" not in listed[0]
    assert api.client.get("/v1/webhook-endpoints", headers=bob["headers"]).json == []
    assert api.client.get("/v1/webhook-endpoints", headers=api.admin).json == []
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"description": "x"}} if method == "patch" else {}
        assert_error(getattr(api.client, method)(path, headers=bob["headers"], **kwargs), 404)
    for action in ("rotate-secret", "ping", "deliveries/1/retry"):
        assert_error(api.client.post(f"{path}/{action}", headers=bob["headers"]), 404)
    assert_error(api.client.get(f"{path}/deliveries", headers=bob["headers"]), 404)

    r = api.client.patch(
        path, json={"event_types": ["job.closed"], "enabled": False}, headers=alice["headers"]
    )
    assert r.status_code == 200, r.json
    assert (r.json["event_types"], r.json["enabled"]) == (["job.closed"], False)
    assert api.client.delete(path, headers=alice["headers"]).status_code == 204
    assert_error(api.client.get(path, headers=alice["headers"]), 404)


def test_unknown_event_types_and_bad_urls_are_422(api: Api, receiver: Receiver) -> None:
    consumer = api.consumer()
    post = "/v1/webhook-endpoints"
    body = {"url": receiver.url(), "event_types": ["job.closed", "job.nope"]}
    assert_error(api.client.post(post, json=body, headers=consumer["headers"]), 422, "event_types")
    for url in ("/relative", "ftp://example.com/x", "https://" + "a" * 2050, "http://", "nope"):
        r = api.client.post(post, json={"url": url}, headers=consumer["headers"])
        assert_error(r, 422, "url")
    assert api.client.get(post, headers=consumer["headers"]).json == []


# Link-local (cloud metadata), multicast and unspecified: refused even on private networks.
ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data",
    "http://224.0.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[fe80::1]/hook",
    "http://[::]/hook",
]
PRIVATE = ["https://10.0.0.1/hook", "https://100.64.0.1/hook", "https://127.0.0.1/hook"]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_registration_refuses_addresses_that_are_never_allowed(api: Api, url: str) -> None:
    consumer = api.consumer()
    r = api.client.post("/v1/webhook-endpoints", json={"url": url}, headers=consumer["headers"])
    assert_error(r, 422, "url")


def test_registration_refuses_private_addresses_and_http_on_the_public_setting(
    settings: Settings, committed: None
) -> None:
    from gigco.web import create_app

    client = create_app(settings.replace(webhook_allow_private_networks=False)).test_client()
    signup = client.post("/v1/consumers", json={"name": "C", "email": "ssrf@example.com"}).json
    headers = {"Authorization": f"Bearer {signup['token']}"}
    for url in [*PRIVATE, "http://93.184.215.14/hook", *ALWAYS_REFUSED]:
        r = client.post("/v1/webhook-endpoints", json={"url": url}, headers=headers)
        assert_error(r, 422, "url")


def test_an_http_url_on_the_public_setting_names_the_setting_for_local_development(
    settings: Settings, committed: None
) -> None:
    from gigco.web import create_app

    client = create_app(settings.replace(webhook_allow_private_networks=False)).test_client()
    signup = client.post("/v1/consumers", json={"name": "C", "email": "http@example.com"}).json
    headers = {"Authorization": f"Bearer {signup['token']}"}
    r = client.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:5001/gigco"}, headers=headers
    )
    assert assert_error(r, 422, "url")["errors"]["url"] == [
        "The URL must start with https://. For local development, "
        "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 allows http:// and private addresses."
    ]
    r = client.post("/v1/webhook-endpoints", json={"url": "ftp://example.com/x"}, headers=headers)
    assert "GIGCO_" not in str(assert_error(r, 422, "url"))


@pytest.mark.parametrize("url", [*PRIVATE, *ALWAYS_REFUSED])
def test_address_policy_is_checked_before_connecting(url: str) -> None:
    with pytest.raises(webhooks.UnsafeUrl):
        webhooks.resolve_url(url, allow_private=False)


def test_delivery_refuses_a_url_that_became_unsafe_without_contacting_it(
    api: Api, engine: sa.Engine
) -> None:
    consumer = api.consumer()
    hook = register(api, consumer["headers"], "http://127.0.0.1:9/never")
    # As if DNS changed after registration: the row now points at cloud metadata.
    with engine.begin() as conn:
        conn.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id == hook["id"])
            .values(url="http://169.254.169.254/latest/meta-data")
        )
    r = api.client.post(f"/v1/webhook-endpoints/{hook['id']}/ping", headers=consumer["headers"])
    assert r.status_code == 202
    path = f"/v1/webhook-endpoints/{hook['id']}/deliveries"
    (delivery,) = wait_for(
        lambda: (
            (d := api.client.get(path, headers=consumer["headers"]).json)
            and d[0]["status"] == "failed"
            and d
        ),
        timeout=20,
        what="the ping to fail on every try",
    )
    assert len(delivery["attempts"]) == 4  # the first try and three retries
    assert all(a["error"].startswith("refused:") for a in delivery["attempts"])
    assert all(a["response_status"] is None for a in delivery["attempts"])


def test_an_expired_lease_is_re_kicked_by_the_sweep(session: Session, settings: Settings) -> None:
    """A worker killed mid-delivery: the row stays ``sending`` until its lease runs out."""
    consumer = factories.consumer(session)
    now = dt.datetime.now(dt.UTC)
    endpoint = webhooks.create_endpoint(
        session,
        Principal(Role.CONSUMER, consumer.id),
        url="http://127.0.0.1:9/hook",
        event_types=None,
        description=None,
        settings=settings,
        now=now,
    )
    delivery_id = webhooks.ping(
        session, Principal(Role.CONSUMER, consumer.id), endpoint.id, now=now
    )
    claimed = webhooks.claim(session, delivery_id, settings=settings, now=now)
    assert claimed is not None
    assert webhooks.claim(session, delivery_id, settings=settings, now=now) is None
    # The worker dies here. Before the lease ends plus the grace, the sweep leaves it alone.
    grace = settings.stuck_step_grace_seconds
    horizon = arming_horizon(settings).total_seconds()
    sweep_at = claimed.lease_until + dt.timedelta(seconds=grace / 2)
    assert (
        webhooks.due_deliveries(session, now=sweep_at, horizon_seconds=horizon, grace_seconds=grace)
        == []
    )
    later = claimed.lease_until + dt.timedelta(seconds=grace + 0.1)
    assert webhooks.due_deliveries(
        session, now=later, horizon_seconds=horizon, grace_seconds=grace
    ) == [(delivery_id, None)]
    again = webhooks.claim(session, delivery_id, settings=settings, now=later)
    assert again is not None and again.msg_id == claimed.msg_id
    # The dead worker's late answer does not count: the new lease owns the row.
    answer = webhooks.Answer(now, 5, status=200)
    assert (
        webhooks.record_attempt(session, claimed, answer, settings=settings, now=later).outcome
        == "lost"
    )
    recorded = webhooks.record_attempt(session, again, answer, settings=settings, now=later)
    assert recorded.outcome == "delivered"
    row = session.get(WebhookDelivery, delivery_id)
    assert row is not None and row.status == DeliveryStatus.DELIVERED


def test_a_later_message_of_a_job_waits_for_the_earlier_one(
    session: Session, settings: Settings
) -> None:
    job = factories.job(session)
    operator = Principal(Role.OPERATOR)
    now = dt.datetime.now(dt.UTC)
    webhooks.create_endpoint(
        session,
        operator,
        url="http://127.0.0.1:9/h",
        event_types=None,
        description=None,
        settings=settings,
        now=now,
    )
    other = factories.job(session)
    from gigco.lifecycle.history import record_event

    first = record_event(session, job.id, "review_received", actor="system", now=now)
    second = record_event(session, job.id, "review_received", actor="system", now=now)
    elsewhere = record_event(session, other.id, "review_received", actor="system", now=now)
    ids = {
        e.seq: session.scalar(
            sa.select(WebhookDelivery.id).where(
                WebhookDelivery.job_id == e.job_id, WebhookDelivery.seq == e.seq
            )
        )
        for e in (first, second)
    }
    other_id = session.scalar(
        sa.select(WebhookDelivery.id).where(WebhookDelivery.job_id == other.id)
    )
    assert webhooks.claim(session, ids[second.seq], settings=settings, now=now) is None
    assert webhooks.claim(session, other_id, settings=settings, now=now) is not None
    claimed = webhooks.claim(session, ids[first.seq], settings=settings, now=now)
    assert claimed is not None
    failed = webhooks.Answer(now, 5, error="ConnectionError")
    for _ in range(len(settings.webhook_retry_schedule)):
        assert (
            webhooks.record_attempt(session, claimed, failed, settings=settings, now=now).outcome
            == "retry"
        )
        claimed = webhooks.claim(
            session, ids[first.seq], settings=settings, now=now + dt.timedelta(seconds=1)
        )
        assert claimed is not None
        assert webhooks.claim(session, ids[second.seq], settings=settings, now=now) is None
    recorded = webhooks.record_attempt(session, claimed, failed, settings=settings, now=now)
    assert (recorded.outcome, recorded.kick) == ("failed", [ids[second.seq]])
    assert webhooks.claim(session, ids[second.seq], settings=settings, now=now) is not None
    assert elsewhere.seq
