"""The console's login and CSRF protection.

Every view but login and the stylesheet needs an operator session, and every POST a CSRF
token; both are checked once, in ``before_request``, so a new view cannot forget them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from gigco.web.ops.blueprint import blp, settings

log = logging.getLogger(__name__)

PUBLIC = {"ops.login", "ops.static"}


def _fingerprint(admin_token: str) -> str:
    """What the session holds for a logged-in operator: bound to the current token."""
    return hmac.new(admin_token.encode(), b"gigco ops operator v1", hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def logged_in() -> bool:
    """True when this browser session belongs to the operator of the current token."""
    token = settings().admin_token
    marker = session.get("operator")
    return bool(token) and isinstance(marker, str) and _same(marker, _fingerprint(token or ""))


def csrf_token() -> str:
    """This session's CSRF token, made on first use (rendered into every POST form)."""
    if not isinstance(session.get("csrf"), str):
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path inside the console, else the dashboard (no open redirect)."""
    if target and target.isprintable() and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/ops"):
            return target
    return url_for("ops.dashboard")


COOKIE_DROPPED = (
    "Your browser did not send the console's session cookie back, so the form's security "
    "token cannot be checked: the cookie is Secure and this page came over plain HTTP. "
    "Open the console over HTTPS, or set GIGCO_OPS_SECURE_COOKIE=false for a plain-HTTP "
    "deployment."
)


def _cookie_dropped_over_http() -> bool:
    """True when no session cookie came back, most likely because it is Secure over HTTP."""
    return (
        bool(current_app.config.get("SESSION_COOKIE_SECURE"))
        and not request.is_secure
        and current_app.config["SESSION_COOKIE_NAME"] not in request.cookies
    )


@blp.before_request
def _guard() -> ResponseReturnValue | None:
    if request.endpoint not in PUBLIC and not logged_in():
        if request.method == "GET":
            return redirect(url_for("ops.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("ops.login"), 303)
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf")
        if not isinstance(expected, str) and _cookie_dropped_over_http():
            abort(400, COOKIE_DROPPED)
        if not isinstance(expected, str) or not _same(sent, expected):
            abort(400, "The form's security token is missing or stale; reload the page and retry.")
    return None


@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form; a right token starts an operator session (never a token in a URL)."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if logged_in():
            return redirect(target)
        return render_template("ops/login.html", next=target)
    token = settings().admin_token
    if not token:
        return render_template(
            "ops/login.html", next=target, error="The console is off: GIGCO_ADMIN_TOKEN is not set."
        ), 403
    if not _same(request.form.get("token", ""), token):
        log.warning("ops login refused", extra={"remote_addr": request.remote_addr})
        return render_template("ops/login.html", next=target, error="That token is not valid."), 401
    session.clear()  # a fresh session (and CSRF token) for the operator
    session.permanent = True
    session["operator"] = _fingerprint(token)
    csrf_token()
    log.info("ops login", extra={"remote_addr": request.remote_addr})
    return redirect(target, 303)


@blp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the operator session."""
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("ops.login"), 303)
