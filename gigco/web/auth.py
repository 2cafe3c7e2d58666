"""Bearer-token authentication and the caller of the current request."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from gigco.lifecycle.accounts import authenticate
from gigco.lifecycle.errors import Forbidden
from gigco.lifecycle.principals import Principal
from gigco.models import Role
from gigco.web.db import primary_session
from gigco.web.errors import Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, if it has one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def caller() -> Principal | None:
    """Whom the request's bearer token names: None without a token or with an unknown one.

    Looked up once per request (the rate limiter asks before the view does).
    """
    if "principal" in g:
        return g.principal
    if "principal_error" in g:
        # The database did not answer the first lookup (the rate limiter's): the view's 503
        # comes at once, not after a second wait on the same silent database.
        raise g.principal_error
    token = bearer_token()
    if token is None:
        return None
    # One indexed lookup per request, no per-process cache: a rotated (revoked) token is
    # refused by every process at once. docs/ops.md has its cost. On the primary, even for a
    # view that reads the replica: a new token works, and a revoked one fails, at once.
    try:
        g.principal = authenticate(
            primary_session(), token, current_app.config["GIGCO"].admin_token
        )
    except SQLAlchemyError as error:
        g.principal_error = error
        raise
    return g.principal


def current_principal() -> Principal:
    """The authenticated caller; 401 if the token is missing or unknown."""
    principal = caller()
    if principal is not None:
        return principal
    if bearer_token() is None:
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    raise Unauthorized("This token is not valid.")


def login_required(*roles: Role) -> Callable[[F], F]:
    """Require a valid token, and one of ``roles`` when given (403 otherwise)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if roles and principal.role not in roles:
                names = " or ".join(r.value for r in roles)
                raise Forbidden(f"Only a {names} may do that.")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
