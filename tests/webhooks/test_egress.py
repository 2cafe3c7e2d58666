"""Webhook egress is bounded: one deadline per attempt (DNS included), a sending cap per
endpoint, a cap on endpoints per owner, and addresses judged by the IPv4 they carry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import webhooks
from gigco.config import Settings
from gigco.lifecycle.errors import Conflict
from gigco.lifecycle.principals import Principal
from gigco.models import DeliveryStatus, Role, WebhookDelivery
from gigco.webhooks.urls import address_refusal
from tests import factories
from tests.harness.webhooks import claimed_ping

SECRET = webhooks.new_secret()


def _claimed(url: str) -> webhooks.Claimed:
    return claimed_ping(url, SECRET, "msg_egress")


@pytest.fixture
def tarpit() -> Iterator[int]:
    """A receiver on 127.0.0.1 that answers one byte of its status line every 0.2 s, for up
    to 10 s: each read is quick, the answer never ends."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.2)
                for byte in (b"HTTP/1.1 200 OK\r\n" * 4)[:50]:
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_a_trickling_receiver_is_cut_off_at_the_attempts_deadline(
    tarpit: int, settings: Settings
) -> None:
    quick = dataclasses.replace(settings, webhook_timeout_seconds=1.0)
    started = time.monotonic()
    answer = webhooks.send(
        _claimed(f"http://127.0.0.1:{tarpit}/hook"), settings=quick, now=dt.datetime.now(dt.UTC)
    )
    took = time.monotonic() - started
    assert answer.status is None
    assert answer.error is not None and answer.error.startswith("timeout:"), answer.error
    assert took < 1.5, f"the attempt took {took:.2f} s against a 1 s deadline"


@pytest.fixture
def hanging_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``hang.invalid`` never resolves (the lookup blocks until the test ends)."""
    release = threading.Event()
    real: Callable[..., Any] = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hang.invalid":
            release.wait(30)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        yield
    finally:
        release.set()


def test_a_hanging_dns_lookup_ends_within_the_attempts_deadline(
    hanging_dns: None, settings: Settings
) -> None:
    quick = dataclasses.replace(settings, webhook_timeout_seconds=1.0)
    started = time.monotonic()
    answer = webhooks.send(
        _claimed("http://hang.invalid/hook"), settings=quick, now=dt.datetime.now(dt.UTC)
    )
    assert time.monotonic() - started < 1.5
    assert answer.error is not None and answer.error.startswith("timeout:"), answer.error


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64, well-known prefix
        ("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254"),  # NAT64, local-use /48
        ("2002:a00:1::1", "10.0.0.1"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo's client
        ("::192.168.1.1", "192.168.1.1"),  # IPv4-compatible
    ],
)
def test_an_ipv6_address_is_judged_by_the_ipv4_it_carries(address: str, carried: str) -> None:
    reason = address_refusal(address, allow_private=False)
    assert reason is not None and reason.startswith(carried), reason


def test_a_public_ipv4_behind_nat64_is_allowed() -> None:
    assert address_refusal("64:ff9b::808:808", allow_private=False) is None


def _endpoint(session: Session, settings: Settings, who: Principal) -> int:
    return webhooks.create_endpoint(
        session,
        who,
        url="http://127.0.0.1:9/hook",
        event_types=None,
        description=None,
        settings=settings,
        now=dt.datetime.now(dt.UTC),
    ).id


def test_one_endpoint_holds_at_most_its_cap_of_sending_slots(
    session: Session, settings: Settings
) -> None:
    """A slow endpoint's messages queue behind its cap; each recorded attempt frees a slot
    and kicks the oldest waiting message."""
    capped = dataclasses.replace(settings, webhook_endpoint_concurrency=2)
    who = Principal(Role.CONSUMER, factories.consumer(session).id)
    endpoint_id = _endpoint(session, capped, who)
    now = dt.datetime.now(dt.UTC)
    pings = [webhooks.ping(session, who, endpoint_id, now=now) for _ in range(3)]
    first, second, third = (webhooks.claim(session, i, settings=capped, now=now) for i in pings)
    assert first is not None and second is not None
    assert third is None
    row = session.get(WebhookDelivery, pings[2])
    assert row is not None and row.status == DeliveryStatus.PENDING
    recorded = webhooks.record_attempt(
        session, first, webhooks.Answer(now, 5, status=204), settings=capped, now=now
    )
    assert recorded.kick == [pings[2]]
    assert webhooks.claim(session, pings[2], settings=capped, now=now) is not None


def test_an_owner_has_at_most_the_cap_of_endpoints(session: Session, settings: Settings) -> None:
    capped = dataclasses.replace(settings, webhook_max_endpoints=2)
    who = Principal(Role.WORKER, factories.worker(session).id)
    other = Principal(Role.WORKER, factories.worker(session).id)
    _endpoint(session, capped, who)
    _endpoint(session, capped, who)
    with pytest.raises(Conflict, match="most allowed"):
        _endpoint(session, capped, who)
    _endpoint(session, capped, other)  # the cap is per owner
    owned = session.scalar(
        sa.select(sa.func.count())
        .select_from(sa.text("webhook_endpoints"))
        .where(sa.text("owner_id = :id")),
        {"id": who.id},
    )
    assert owned == 2
