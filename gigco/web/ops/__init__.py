"""The operators' console under ``/ops``: server-rendered pages behind the operator token.

``auth`` holds login and CSRF, ``pages`` the pages, ``helpers`` what templates format with,
``queries`` what the pages read, ``system`` the system panel (the facts of /healthz); all
register on the one blueprint in ``blueprint``.

``init_app`` sets up what the console needs from Flask's session: a signing key (derived
from ``GIGCO_ADMIN_TOKEN`` with HMAC, as GigCo has no dedicated secret-key setting) and
cookie flags (Secure, HttpOnly, SameSite=Lax, path ``/ops``, 8 hours).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from flask import Flask

from gigco.config import Settings
from gigco.web.ops import auth, pages, system, webhooks  # noqa: F401 - importing registers views
from gigco.web.ops.blueprint import blp

SESSION_HOURS = 8


def secret_key(admin_token: str | None) -> bytes:
    """Flask's signing key: HMAC-SHA256 of a fixed label under the operator token.

    Rotating the token therefore signs every console session out. Without a token the
    console refuses all logins, and the key is random.
    """
    if not admin_token:
        return secrets.token_bytes(32)
    return hmac.new(
        admin_token.encode(), b"gigco ops session-signing key v1", hashlib.sha256
    ).digest()


def init_app(app: Flask, settings: Settings) -> None:
    """Configure sessions for the console and register its blueprint."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(settings.admin_token)
    app.config.update(
        # Secure by default; a plain-HTTP deployment off localhost sets
        # GIGCO_OPS_SECURE_COOKIE=false (auth.py says so when the cookie never comes back).
        SESSION_COOKIE_SECURE=settings.ops_secure_cookie,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="gigco_ops",
        SESSION_COOKIE_PATH="/ops",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=SESSION_HOURS),
    )
    app.register_blueprint(blp)
