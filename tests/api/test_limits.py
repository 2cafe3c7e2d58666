"""Rate limits (api.md "Limits") counted in a real Redis, through the app's own limiter.

Each test builds apps on low limits and counts in the rate limits' Redis database
(``limits_redis_url()``), flushed first; the rest of the suite runs at limits it never meets
(tests/harness/env.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from gigco.config import Settings
from gigco.tasks import configure as configure_celery
from gigco.web import create_app
from tests.api.helpers import assert_error
from tests.harness.bodies import consumer_body, worker_body
from tests.harness.env import ADMIN_TOKEN, limits_redis_url
from tests.harness.http import auth

Build = Callable[..., Flask]
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


@pytest.fixture
def limited(settings: Settings, committed: None) -> Iterator[Build]:
    """Build apps with other limits, counting in a flushed Redis database of their own."""
    redis.Redis.from_url(limits_redis_url()).flushdb()

    def build(**changes: object) -> Flask:
        return create_app(settings.replace(rate_limit_storage_url=limits_redis_url(), **changes))

    try:
        yield build
    finally:
        configure_celery(settings)


def _client(app: Flask, address: str = "127.0.0.1") -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _sign_up(client: FlaskClient, headers: dict[str, str] | None = None) -> TestResponse:
    return client.post("/v1/consumers", json=consumer_body(), headers=headers or {})


def _assert_limited(r: TestResponse, limit: int) -> None:
    """A 429 in the error envelope, saying when to retry and which limit it met."""
    body = assert_error(r, 429)
    assert f"{limit} per 1 minute" in body["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["Retry-After"] == r.headers["RateLimit-Reset"]
    assert r.headers["RateLimit-Limit"] == str(limit)
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["RateLimit-Policy"] == f"{limit};w=60"


def test_a_token_past_its_limit_gets_429_and_another_token_does_not(limited: Build) -> None:
    app = limited(rate_limit_requests="3/minute")
    client = _client(app)
    ann, bob = (auth(_sign_up(client).json["token"]) for _ in range(2))

    answers = [client.get("/v1/me", headers=ann) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    # Answers within the limit carry no RateLimit-* (api.md: on a 429; two Redis reads each).
    assert not any(name in r.headers for r in answers for name in RATE_HEADERS)
    _assert_limited(client.get("/v1/me", headers=ann), 3)
    # Every route shares the one budget: the token is limited everywhere.
    _assert_limited(client.get("/v1/jobs", headers=ann), 3)

    # Another token from the same address, and anonymous callers, count apart.
    assert client.get("/v1/me", headers=bob).status_code == 200
    assert client.get("/v1/categories").status_code == 200
    # Rotating the token does not start a new count: it is the account that is limited.
    rotated = client.post("/v1/tokens/rotate", headers=bob)
    assert rotated.status_code == 200
    assert client.get("/v1/me", headers=auth(rotated.json["token"])).status_code == 200
    _assert_limited(client.get("/v1/me", headers=auth(rotated.json["token"])), 3)


def test_made_up_methods_are_counted_and_grow_no_table(limited: Build) -> None:
    """The limits a route meets are remembered per method and URL rule the app routes; a
    request that matched no rule, whatever method it makes up, is still counted and adds
    nothing to remember (else a flood of invented methods would grow the process)."""
    app = limited(rate_limit_requests="3/minute")
    client = _client(app, "192.0.2.44")
    assert client.get("/v1/categories").status_code == 200
    remembered = dict(app.extensions["gigco_limits"]._meets)
    answers = [client.open("/v1/nowhere", method=f"MADEUP{n}") for n in range(2)]
    assert [r.status_code for r in answers] == [404, 404]
    _assert_limited(client.open("/v1/categories", method="MADEUP9"), 3)
    assert app.extensions["gigco_limits"]._meets == remembered


def test_two_app_instances_share_one_count_in_redis(limited: Build) -> None:
    first, second = limited(rate_limit_requests="4/minute"), limited(rate_limit_requests="4/minute")
    ann = auth(_sign_up(_client(first)).json["token"])
    answers = [
        _client(app).get("/v1/me", headers=ann).status_code
        for app in (first, second, first, second, first, second)
    ]
    assert answers == [200, 200, 200, 200, 429, 429]


def test_sign_up_is_limited_per_client_address(limited: Build) -> None:
    app = limited(rate_limit_signups="2/minute")
    here, there = _client(app, "203.0.113.7"), _client(app, "198.51.100.9")
    assert [_sign_up(here).status_code for _ in range(2)] == [201, 201]
    _assert_limited(_sign_up(here), 2)
    # Consumers and workers share the budget of sign-ups.
    _assert_limited(here.post("/v1/workers", json=worker_body()), 2)
    # Sign-ups are not the requests' budget: the address may still read.
    assert here.get("/v1/categories").status_code == 200
    assert _sign_up(there).status_code == 201


def test_a_forwarded_for_header_is_believed_only_from_trusted_proxies(limited: Build) -> None:
    # No proxy configured: the header is anyone's to send, and changes nothing.
    facing = _client(limited(rate_limit_signups="1/minute"), "203.0.113.7")
    assert _sign_up(facing, {"X-Forwarded-For": "10.0.0.1"}).status_code == 201
    _assert_limited(_sign_up(facing, {"X-Forwarded-For": "10.0.0.2"}), 1)

    # One trusted proxy (the peer): the address it appended is the client's, whatever the
    # client put before it.
    proxied = _client(limited(rate_limit_signups="1/minute", trusted_proxy_hops=1), "192.0.2.1")
    assert _sign_up(proxied, {"X-Forwarded-For": "198.51.100.1"}).status_code == 201
    _assert_limited(_sign_up(proxied, {"X-Forwarded-For": "10.9.9.9, 198.51.100.1"}), 1)
    assert _sign_up(proxied, {"X-Forwarded-For": "198.51.100.2"}).status_code == 201


def test_the_operator_is_never_limited(limited: Build) -> None:
    client = _client(limited(rate_limit_requests="2/minute"))
    answers = [client.get("/v1/jobs", headers=auth(ADMIN_TOKEN)) for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 5
    assert not any(name in r.headers for r in answers for name in RATE_HEADERS)


def test_off_turns_each_limit_off(limited: Build) -> None:
    client = _client(limited(rate_limit_signups=None, rate_limit_requests=None))  # off
    # Past the defaults (20 sign-ups, 600 requests a minute), and no RateLimit headers.
    signups = [_sign_up(client) for _ in range(21)]
    assert {r.status_code for r in signups} == {201}
    token = auth(signups[0].json["token"])
    reads = [client.get("/v1/me", headers=token) for _ in range(601)]
    assert {r.status_code for r in reads} == {200}
    assert not any(name in r.headers for r in signups + reads for name in RATE_HEADERS)


def test_webhook_pings_and_manual_retries_are_capped_per_owner(limited: Build) -> None:
    """Each ping or manual retry sends a message to a receiver the caller names: a budget of
    their own per owner, shared by both, besides the requests' one."""
    app = limited(rate_limit_webhook_sends="2/minute")
    client = _client(app)
    ann, bob = (auth(_sign_up(client).json["token"]) for _ in range(2))

    def endpoint(headers: dict[str, str]) -> int:
        made = client.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=headers
        )
        assert made.status_code == 201, made.json
        return int(made.json["id"])

    mine, theirs = endpoint(ann), endpoint(bob)
    pings = [client.post(f"/v1/webhook-endpoints/{mine}/ping", headers=ann) for _ in range(2)]
    assert [r.status_code for r in pings] == [202, 202]
    _assert_limited(client.post(f"/v1/webhook-endpoints/{mine}/ping", headers=ann), 2)
    delivery = pings[0].json["delivery_id"]
    retry = f"/v1/webhook-endpoints/{mine}/deliveries/{delivery}/retry"
    _assert_limited(client.post(retry, headers=ann), 2)
    # Reads are not sends; another owner has a budget of their own.
    assert client.get(f"/v1/webhook-endpoints/{mine}/deliveries", headers=ann).status_code == 200
    assert client.post(f"/v1/webhook-endpoints/{theirs}/ping", headers=bob).status_code == 202


def test_a_storage_that_does_not_answer_lets_requests_through(
    settings: Settings, committed: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The limiter never takes the API down: with nothing listening where the counts live,
    requests past the limit are served, and the failure is logged."""
    try:
        app = create_app(
            settings.replace(
                rate_limit_storage_url="redis://127.0.0.1:1/0", rate_limit_requests="1/minute"
            )
        )
    finally:
        configure_celery(settings)
    client = _client(app)
    with caplog.at_level("WARNING", logger="gigco.web.limits"):
        answers = [client.get("/v1/categories").status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    assert "rate limits not counted" in caplog.text
