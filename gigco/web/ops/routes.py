"""The console's pages: login, dashboard, jobs (stuck ones first), one job and its history.

Every view but login and the stylesheet needs an operator session, and every POST a CSRF
token; both are checked once, in ``before_request``, so a new view cannot forget them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from gigco.config import Settings
from gigco.db import utcnow
from gigco.lifecycle import actions
from gigco.lifecycle.access import Principal
from gigco.lifecycle.errors import DomainError
from gigco.models import JobStatus, Role
from gigco.web.db import commit, step_context
from gigco.web.db import session as db_session
from gigco.web.ops import queries

log = logging.getLogger(__name__)

blp = Blueprint(
    "ops",
    __name__,
    url_prefix="/ops",
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)

PER_PAGE = 50
MAX_PAGE = 100_000
PUBLIC = {"ops.login", "ops.static"}
OPERATOR = Principal(Role.OPERATOR)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _settings() -> Settings:
    return current_app.config["GIGCO"]


# --- session, login and CSRF ------------------------------------------------------------


def _fingerprint(admin_token: str) -> str:
    """What the session holds for a logged-in operator: bound to the current token."""
    return hmac.new(admin_token.encode(), b"gigco ops operator v1", hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def logged_in() -> bool:
    """True when this browser session belongs to the operator of the current token."""
    token = _settings().admin_token
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


@blp.before_request
def _guard() -> Response | None:
    if request.endpoint not in PUBLIC and not logged_in():
        if request.method == "GET":
            return redirect(url_for("ops.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("ops.login"), 303)
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf")
        if not isinstance(expected, str) or not _same(sent, expected):
            abort(400, "The form's security token is missing or stale; reload the page and retry.")
    return None


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@blp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "when": _when,
        "ago": _ago,
        "money": _money,
        "as_json": _as_json,
        "logged_in": logged_in,
        "statuses": list(JobStatus),
    }


@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form; a right token starts an operator session (never a token in a URL)."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if logged_in():
            return redirect(target)
        return render_template("ops/login.html", next=target)
    token = _settings().admin_token
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
def logout() -> Response:
    """End the operator session."""
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("ops.login"), 303)


# --- pages ------------------------------------------------------------------------------


def _int_arg(name: str, default: int, lowest: int, highest: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"{name} must be a whole number.")
    if not lowest <= value <= highest:
        abort(400, f"{name} must be from {lowest} to {highest}.")
    return value


def _status_arg() -> JobStatus | None:
    raw = request.args.get("status", "")
    if not raw:
        return None
    try:
        return JobStatus(raw)
    except ValueError:
        abort(400, "Unknown status; pick one from the list.")


@blp.get("/")
def dashboard() -> str:
    """Jobs per status, and the jobs that need a look."""
    s = db_session()
    counts = queries.status_counts(s)
    overdue, overdue_total = queries.attention(
        s, now=utcnow(), grace_seconds=_settings().stuck_step_grace_seconds, limit=20
    )
    return render_template(
        "ops/dashboard.html",
        counts=counts,
        total=sum(counts.values()),
        overdue=overdue,
        overdue_total=overdue_total,
        grace=_settings().stuck_step_grace_seconds,
    )


@blp.get("/jobs")
def jobs() -> str:
    """Jobs newest first, filtered by status and paged; stuck or overdue ones on top."""
    status = _status_arg()
    page = _int_arg("page", 1, 1, MAX_PAGE)
    s = db_session()
    overdue, overdue_total = queries.attention(
        s, now=utcnow(), grace_seconds=_settings().stuck_step_grace_seconds, status=status
    )
    rows, total = queries.list_jobs(s, status=status, page=page, per_page=PER_PAGE)
    return render_template(
        "ops/jobs.html",
        status=status,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        rows=rows,
        total=total,
        overdue=overdue,
        overdue_total=overdue_total,
        grace=_settings().stuck_step_grace_seconds,
    )


@blp.get("/jobs/find")
def find_job() -> Response:
    """Jump to a job by its id."""
    return redirect(url_for("ops.job", job_id=_int_arg("id", 0, 1, 2**63 - 1)))


@blp.get("/jobs/<int:job_id>")
def job(job_id: int) -> str:
    """One job: its state, timers, full history and side rows, and the operator's action."""
    detail = queries.job_detail(db_session(), job_id)
    if detail is None:
        abort(404, f"Job {job_id} not found.")
    return render_template(
        "ops/job.html",
        d=detail,
        job=detail.job,
        now=utcnow(),
        can_retry=detail.job.status == JobStatus.PAYMENT_FAILED,
        max_attempts=_settings().payment_max_attempts,
    )


@blp.post("/jobs/<int:job_id>/payment/retry")
def retry_payment(job_id: int) -> Response:
    """payment_failed → completed, as ``POST /v1/jobs/<id>/payment/retry`` does."""
    _job, dues = actions.retry_payment(db_session(), job_id, OPERATOR, step_context())
    commit(dues)
    log.info("ops payment retry", extra={"job_id": job_id})
    flash(f"Payment retry started for job {job_id}: attempts start again.")
    return redirect(url_for("ops.job", job_id=job_id), 303)


# --- errors: HTML pages, not the API's JSON -------------------------------------------


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    return render_template("ops/error.html", code=code, message=error.description), code


@blp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> tuple[str, int]:
    db_session().rollback()
    back = request.view_args.get("job_id") if request.view_args else None
    return render_template(
        "ops/error.html", code=error.http_status, message=error.message, job_id=back
    ), error.http_status


# --- template helpers -------------------------------------------------------------------


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return ""
    seconds = ((now or utcnow()) - value).total_seconds()
    amount = abs(seconds)
    if amount < 60:
        text = f"{amount:.1f} s"
    elif amount < 3600:
        text = f"{amount / 60:.0f} min"
    elif amount < 86400:
        text = f"{amount / 3600:.1f} h"
    else:
        text = f"{amount / 86400:.1f} d"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def _money(cents: int | None, currency: str = "USD") -> str:
    return "—" if cents is None else f"{cents / 100:,.2f} {currency}"


def _as_json(data: Any) -> str:
    # A plain string: Jinja escapes it like any other text.
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str) if data else ""
