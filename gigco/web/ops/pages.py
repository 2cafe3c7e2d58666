"""The console's pages: dashboard, jobs (stuck ones first), one job and its history.

Login and CSRF are checked for every view in ``gigco.web.ops.auth``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from gigco.db import utcnow
from gigco.lifecycle import actions
from gigco.lifecycle.access import Principal
from gigco.lifecycle.errors import DomainError
from gigco.models import JobStatus, Role
from gigco.web.db import commit, step_context
from gigco.web.db import session as db_session
from gigco.web.errors import http_status
from gigco.web.ids import MAX_ROW_ID
from gigco.web.ops import helpers, queries
from gigco.web.ops.auth import csrf_token, logged_in
from gigco.web.ops.blueprint import blp, settings

log = logging.getLogger(__name__)

PER_PAGE = 50
MAX_PAGE = 100_000
OPERATOR = Principal(Role.OPERATOR)


@blp.context_processor
def _template_names() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "when": helpers.when,
        "ago": helpers.ago,
        "money": helpers.money,
        "as_json": helpers.as_json,
        "logged_in": logged_in,
        "statuses": list(JobStatus),
    }


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
        s, now=utcnow(), grace_seconds=settings().stuck_step_grace_seconds, limit=20
    )
    return render_template(
        "ops/dashboard.html",
        counts=counts,
        total=sum(counts.values()),
        overdue=overdue,
        overdue_total=overdue_total,
        grace=settings().stuck_step_grace_seconds,
    )


@blp.get("/jobs")
def jobs() -> str:
    """Jobs newest first, filtered by status and paged; stuck or overdue ones on top."""
    status = _status_arg()
    page = _int_arg("page", 1, 1, MAX_PAGE)
    s = db_session()
    overdue, overdue_total = queries.attention(
        s, now=utcnow(), grace_seconds=settings().stuck_step_grace_seconds, status=status
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
        grace=settings().stuck_step_grace_seconds,
    )


@blp.get("/jobs/find")
def find_job() -> Response:
    """Jump to a job by its id."""
    return redirect(url_for("ops.job", job_id=_int_arg("id", 0, 1, MAX_ROW_ID)))


@blp.get("/jobs/<int:job_id>")
def job(job_id: int) -> str:
    """One job: its state, timers, full history and side rows, and the operator's action."""
    detail = None if job_id > MAX_ROW_ID else queries.job_detail(db_session(), job_id)
    if detail is None:
        abort(404, f"Job {job_id} not found.")
    return render_template(
        "ops/job.html",
        d=detail,
        job=detail.job,
        now=utcnow(),
        can_retry=detail.job.status == JobStatus.PAYMENT_FAILED,
        max_attempts=settings().payment_max_attempts,
    )


@blp.post("/jobs/<int:job_id>/payment/retry")
def retry_payment(job_id: int) -> Response:
    """payment_failed → completed, as ``POST /v1/jobs/<id>/payment/retry`` does."""
    if job_id > MAX_ROW_ID:
        abort(404, f"Job {job_id} not found.")
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
    code = http_status(error)
    return render_template("ops/error.html", code=code, message=error.message, job_id=back), code
