"""Rate limits (api.md "Limits"): flask-limiter, counting in Redis for every API process.

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
of them (api.md asks for them on a 429): filling them costs two Redis reads per request, a
tenth of a plain read's CPU, on every request of every client. When the
storage does not answer (within the broker timeout) requests are let through and the
failure is logged: the limiter never takes the API down.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from gigco.config import Settings
from gigco.models import Role
from gigco.web.auth import caller
from gigco.web.errors import envelope

log = logging.getLogger(__name__)

SIGNUP_PATHS = frozenset({"/v1/consumers", "/v1/workers"})
_EXTENSION = "gigco_limiter"


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


def _login_refused(limit: RequestLimit) -> Response:
    """The login form again, saying when to retry (not a JSON body: a person reads it)."""
    retry = _seconds_until(limit.window[0])
    page = render_template(
        "ops/login.html",
        next=request.values.get("next") or "",
        error=f"Too many refused logins from your address: try again in {retry} s.",
    )
    return Response(page, status=429, headers={"Retry-After": str(retry)})


def _seconds_until(at: float) -> int:
    return max(1, math.ceil(at - time.time()))


def init_app(app: Flask, settings: Settings) -> Limiter:
    """Count requests against ``settings``' limits; trust ``trusted_proxy_hops`` proxies."""
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    limits: list[ApplicationLimit] = []
    if settings.rate_limit_ops_logins:
        limits.append(
            ApplicationLimit(
                settings.rate_limit_ops_logins,
                key_function=client_address,
                scope="ops-login",
                exempt_when=lambda: not _ops_login(),
                deduct_when=lambda response: response.status_code == 401,  # refused ones
                on_breach=_login_refused,
            )
        )
    if settings.rate_limit_signups:
        limits.append(
            ApplicationLimit(
                settings.rate_limit_signups,
                key_function=client_address,
                scope="signups",
                exempt_when=lambda: not _signup(),
            )
        )
    if settings.rate_limit_webhook_sends:
        limits.append(
            ApplicationLimit(
                settings.rate_limit_webhook_sends,
                key_function=_caller_key,
                scope="webhook-sends",
                exempt_when=lambda: not _webhook_send(),
            )
        )
    if settings.rate_limit_requests:
        limits.append(
            ApplicationLimit(
                settings.rate_limit_requests,
                key_function=_caller_key,
                scope="requests",
                exempt_when=lambda: _signup() or request.blueprint == "ops",
            )
        )
    timeout = settings.broker_timeout_seconds
    storage = settings.rate_limit_storage
    options: dict[str, str | int] = {}
    if not storage.startswith("memory"):
        # limits hands these to redis-py: a Redis that does not answer costs a request this
        # long, never a hang.
        options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}  # type: ignore[dict-item]
    limiter = Limiter(
        _caller_key,
        app=app,
        application_limits=limits,  # type: ignore[arg-type]
        storage_uri=storage,
        storage_options=options,
        strategy="fixed-window",
        key_prefix="gigco",
        headers_enabled=False,  # ours below: the IETF draft's names, Reset in seconds
        swallow_errors=True,
    )
    limiter.request_filter(_operator)
    app.after_request(_headers)
    app.register_error_handler(RateLimitExceeded, _too_many)
    app.extensions[_EXTENSION] = limiter
    return limiter


def _headers(response: Response) -> Response:
    """On a 429, ``Retry-After`` and ``RateLimit-*`` for the limit that refused it."""
    if response.status_code != 429:
        return response
    limiter: Limiter = current_app.extensions[_EXTENSION]
    limit = limiter.current_limit
    if limit is None:
        return response
    try:
        reset_at, remaining = limit.window
        reset = _seconds_until(reset_at)
    except Exception:  # the storage went away between the count and now
        log.warning("rate limit headers left out: the storage did not answer", exc_info=True)
        return response
    item = limit.limit
    response.headers["RateLimit-Limit"] = str(item.amount)
    response.headers["RateLimit-Remaining"] = str(max(0, remaining))
    response.headers["RateLimit-Reset"] = str(reset)
    response.headers["RateLimit-Policy"] = f"{item.amount};w={item.get_expiry()}"
    response.headers["Retry-After"] = str(reset)
    return response


def _too_many(error: RateLimitExceeded) -> ResponseReturnValue:
    if error.response is not None:  # the console's own page
        return error.response
    return envelope(
        429,
        f"Too many requests: the limit is {error.description}; retry after the number of "
        "seconds in Retry-After.",
    ), 429
