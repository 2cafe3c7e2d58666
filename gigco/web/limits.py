"""Rate limits (api.md "Limits"): the ``limits`` library's fixed windows, counted in Redis for
every API process.

Four limits, each a fixed window counted under its own scope:

- ``requests`` (``GIGCO_RATE_LIMIT_REQUESTS``): every request, per caller — the account a
  valid bearer token names (rotating the token does not reset the count), else the client
  address. Sign-ups and the operators' console are counted by their own limits.
- ``signups`` (``GIGCO_RATE_LIMIT_SIGNUPS``): ``POST /v1/consumers`` and ``/v1/workers``
  together, per client address.
- ``ops-login`` (``GIGCO_RATE_LIMIT_OPS_LOGINS``): refused ``/ops`` logins per client
  address; past it the form answers 429 whatever the token.
- ``webhook-sends`` (``GIGCO_RATE_LIMIT_WEBHOOK_SENDS``): webhook pings and manual retries
  per caller (the endpoints' owner), each of which sends a message to a receiver the caller
  names; counted besides ``requests``.

The operator's token is exempt from all of them. The client address is the socket's peer,
or, behind ``GIGCO_TRUSTED_PROXY_HOPS`` proxies, what the nearest of them says it saw
(werkzeug's ProxyFix): never a header any client can send. A 429 is the error envelope with
``Retry-After`` and the IETF draft's ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` (seconds) and ``RateLimit-Policy``. Answers within the limit carry none
of them (api.md asks for them on a 429): filling them would cost two Redis reads on every
request of every client. When the storage does not answer (within the broker timeout)
requests are let through and the failure is logged: the limiter never takes the API down.

The counting (windows, storage, its Redis script) is the ``limits`` library's, which
flask-limiter is built on; this module only says which limits a request meets, in one hook
and one Redis round trip per limit met. flask-limiter's own per-request machinery (its
context, limit resolution and exemption scopes) cost a third of a plain read's API CPU
(docs/benchmarks.md, session 6).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, after_this_request, render_template, request
from flask.typing import ResponseReturnValue
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from gigco.config import Settings
from gigco.models import Role
from gigco.web.auth import caller
from gigco.web.errors import envelope

log = logging.getLogger(__name__)

SIGNUP_PATHS = frozenset({"/v1/consumers", "/v1/workers"})
KEY_PREFIX = "gigco"
_EXTENSION = "gigco_limits"


def client_address() -> str:
    """The client's address: the peer, or what the trusted proxies say they saw."""
    return request.remote_addr or "unknown"


def _signup() -> bool:
    return (
        request.method == "POST"
        and request.url_rule is not None
        and (request.url_rule.rule in SIGNUP_PATHS)
    )


# The routes that send a webhook message on demand: a ping, a manual retry.
WEBHOOK_SEND_RULES = frozenset(
    {
        "/v1/webhook-endpoints/<id:endpoint_id>/ping",
        "/v1/webhook-endpoints/<id:endpoint_id>/deliveries/<id:delivery_id>/retry",
    }
)


def _webhook_send() -> bool:
    return (
        request.method == "POST"
        and request.url_rule is not None
        and request.url_rule.rule in WEBHOOK_SEND_RULES
    )


def _ops_login() -> bool:
    return request.method == "POST" and request.endpoint == "ops.login"


def _request() -> bool:
    return not _signup() and request.blueprint != "ops"


def _caller_key() -> str:
    """The account a valid token names, else the client's address."""
    try:
        principal = caller()
    except SQLAlchemyError:  # the database is down: the view answers 503 on its own
        principal = None
    if principal is None:
        return f"address:{client_address()}"
    return f"{principal.role.value}:{principal.id}"


def _operator() -> bool:
    try:
        principal = caller()
    except SQLAlchemyError:
        return False
    return principal is not None and principal.role == Role.OPERATOR


@dataclass(frozen=True)
class Limit:
    """One setting's rates, counted under ``scope`` per ``key()`` for the requests it
    ``applies`` to; ``refusals_only`` counts only the answers that refused (401)."""

    scope: str
    items: tuple[RateLimitItem, ...]
    key: Callable[[], str]
    applies: Callable[[], bool]
    refusals_only: bool = False


@dataclass(frozen=True)
class Breach:
    """The rate a request met, and when its window ends."""

    limit: Limit
    item: RateLimitItem
    reset_at: float


class RateLimits:
    """The app's limits, checked before each view (``before_request``)."""

    def __init__(self, limits: list[Limit], storage_uri: str, options: dict[str, float]):
        self.limits = limits
        self.windows = FixedWindowRateLimiter(storage_from_string(storage_uri, **options))
        # Which limits a request meets depends on its method and URL rule alone: asked once
        # per pair the app routes (a bounded set: a request that matched no rule, with any
        # method a client makes up, is asked each time).
        self._meets: dict[tuple[str, str, str], tuple[Limit, ...]] = {}

    def meets(self) -> tuple[Limit, ...]:
        """The limits the request's method and URL rule meet."""
        rule = request.url_rule
        if rule is None:
            return tuple(limit for limit in self.limits if limit.applies())
        route = (request.method, rule.rule, rule.endpoint)
        found = self._meets.get(route)
        if found is None:
            found = self._meets[route] = tuple(limit for limit in self.limits if limit.applies())
        return found

    def check(self) -> ResponseReturnValue | None:
        """Count the request against each limit it meets; a 429 past one of them."""
        meets = self.meets()
        if not meets or _operator():
            return None
        try:
            for limit in meets:
                key = limit.key()
                if limit.refusals_only:
                    after_this_request(self._refusal_counter(limit, key))
                for item in limit.items:
                    ids = (KEY_PREFIX, limit.scope, key)
                    allowed = (
                        self.windows.test(item, *ids)
                        if limit.refusals_only
                        else self.windows.hit(item, *ids)
                    )
                    if not allowed:
                        reset_at = self.windows.get_window_stats(item, *ids).reset_time
                        return _refused(Breach(limit, item, reset_at))
        except Exception:  # the storage does not answer: let the request through
            log.warning("rate limits not counted: the storage did not answer", exc_info=True)
        return None

    def _refusal_counter(self, limit: Limit, key: str) -> Callable[[Response], Response]:
        """The request's answer, counted against ``limit`` (which counts only refusals) when
        it refused (401)."""

        def count_refusal(response: Response) -> Response:
            if response.status_code != 401:
                return response
            try:
                for item in limit.items:
                    self.windows.hit(item, KEY_PREFIX, limit.scope, key)
            except Exception:
                log.warning("a refusal not counted: the storage did not answer", exc_info=True)
            return response

        return count_refusal


def _rates(setting: str | None) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(setting)) if setting else ()


def init_app(app: Flask, settings: Settings) -> RateLimits:
    """Count requests against ``settings``' limits; trust ``trusted_proxy_hops`` proxies."""
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    chosen = [
        Limit("ops-login", _rates(settings.rate_limit_ops_logins), client_address, _ops_login,
              refusals_only=True),
        Limit("signups", _rates(settings.rate_limit_signups), client_address, _signup),
        Limit("webhook-sends", _rates(settings.rate_limit_webhook_sends), _caller_key,
              _webhook_send),
        Limit("requests", _rates(settings.rate_limit_requests), _caller_key, _request),
    ]  # fmt: skip
    options: dict[str, float] = {}
    storage = settings.rate_limit_storage
    if not storage.startswith("memory"):
        # limits hands these to redis-py: a Redis that does not answer costs a request this
        # long, never a hang.
        timeout = settings.broker_timeout_seconds
        options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    limits = RateLimits([limit for limit in chosen if limit.items], storage, options)
    if limits.limits:
        app.before_request(limits.check)
    app.extensions[_EXTENSION] = limits
    return limits


def _refused(breach: Breach) -> ResponseReturnValue:
    """429: the error envelope (the console's login form for its limit), ``Retry-After`` and
    the IETF draft's ``RateLimit-*`` for the rate met."""
    retry = max(1, math.ceil(breach.reset_at - time.time()))
    item = breach.item
    headers = {
        "Retry-After": str(retry),
        "RateLimit-Limit": str(item.amount),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(retry),
        "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
    }
    if breach.limit.scope == "ops-login":  # a person reads it: the form again, not JSON
        page = render_template(
            "ops/login.html",
            next=request.values.get("next") or "",
            error=f"Too many refused logins from your address: try again in {retry} s.",
        )
        return Response(page, status=429, headers=headers)
    body = envelope(
        429,
        f"Too many requests: the limit is {item}; retry after the number of seconds in "
        "Retry-After.",
    )
    return body, 429, headers
