"""Bearer-token authentication and the caller of the current request."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from cachetools import TTLCache
from flask import current_app, g, request

from gigco.lifecycle.access import Principal
from gigco.lifecycle.accounts import authenticate, hash_token
from gigco.lifecycle.errors import Forbidden
from gigco.models import Role
from gigco.web.db import session
from gigco.web.errors import Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


class PrincipalCache:
    """Known tokens' principals, kept for a minute in each process of an app.

    Tokens are never reissued to someone else and have no revocation, so this saves a query
    on nearly every request. Unknown tokens are not kept (a token issued a moment ago works
    at once), nor is the operator's token, which is checked against the settings each time.
    """

    ttl_seconds = 60

    def __init__(self) -> None:
        self._known: TTLCache[str, Principal] = TTLCache(maxsize=50_000, ttl=self.ttl_seconds)
        self._lock = threading.Lock()

    def principal(self, token: str) -> Principal | None:
        """The principal of ``token``, from memory or from the database."""
        key = hash_token(token)
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        principal = authenticate(session(), token, current_app.config["GIGCO"].admin_token)
        if principal is not None and principal.role != Role.OPERATOR:
            with self._lock:
                self._known[key] = principal
        return principal


def current_principal() -> Principal:
    """The authenticated caller; 401 if the token is missing or unknown."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    principal = current_app.extensions["gigco_principals"].principal(token.strip())
    if principal is None:
        raise Unauthorized("This token is not valid.")
    g.principal = principal
    return principal


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
