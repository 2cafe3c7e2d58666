"""The console's pages: dashboard, jobs (stuck ones first), one job and its history.

Login and CSRF are checked for every view in ``gigco.web.ops.auth``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from gigco import clock
from gigco.lifecycle import disputes, operator, policies
from gigco.lifecycle.counts import jobs_per_status
from gigco.lifecycle.errors import DomainError
from gigco.lifecycle.ledger import csv_lines, ledger_days
from gigco.lifecycle.schedule import STEP_FOR_STATUS
from gigco.lifecycle.transitions import CANCELLABLE, TERMINAL
from gigco.models import JobStatus
from gigco.tasks.refunds import send_refund_after_commit
from gigco.web.db import commit, reads_replica, step_context
from gigco.web.db import session as db_session
from gigco.web.errors import http_status
from gigco.web.ids import MAX_ROW_ID
from gigco.web.ops import helpers, queries
from gigco.web.ops.auth import csrf_token, logged_in
from gigco.web.ops.blueprint import blp, settings

log = logging.getLogger(__name__)

PER_PAGE = 50
BULK_MAX = 200
DONE = {
    "retry_payment": "Payment retry started for job {job_id}: attempts start again.",
    "cancel": "Job {job_id} is cancelled; its consumer and worker are told.",
    "rekick": "The pending step of job {job_id} was sent again.",
    "upgrade_policy": "Job {job_id} runs under the newest lifecycle policy.",
}


@blp.context_processor
def _template_names() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "when": helpers.when,
        "count": lambda n: helpers.count(n, queries.COUNT_CAP),
        "ago": helpers.ago,
        "money": helpers.money,
        "as_json": helpers.as_json,
        "coords": helpers.coords,
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
@reads_replica
def dashboard() -> str:
    """Jobs per status, and the jobs that need a look."""
    s = db_session()
    counts = jobs_per_status(s)
    overdue, overdue_total = queries.attention(
        s, now=clock.now(), grace_seconds=settings().stuck_step_grace_seconds, limit=20
    )
    return render_template(
        "ops/dashboard.html",
        counts=counts,
        total=sum(counts.values()),
        overdue=overdue,
        overdue_total=overdue_total,
        grace=settings().stuck_step_grace_seconds,
    )


FILTER_ARGS = (
    "status",
    "consumer",
    "worker",
    "category",
    "created_from",
    "created_to",
    "scheduled_from",
    "scheduled_to",
    "overdue",
)


def _id_arg(name: str) -> int | None:
    return _int_arg(name, 0, 1, MAX_ROW_ID) or None


def _time_arg(name: str, *, end: bool) -> dt.datetime | None:
    """A date (``2030-01-31``) or a moment (``2030-01-31T10:00``), read as UTC.

    An end date alone means the end of that day, so a range's bounds are both inclusive
    for a person reading it.
    """
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        abort(400, f"{name} must be a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM).")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if end and len(raw) == 10:
        value += dt.timedelta(days=1)
    return value


def _filters() -> queries.JobFilter:
    category = request.args.get("category", "").strip() or None
    return queries.JobFilter(
        status=_status_arg(),
        consumer_id=_id_arg("consumer"),
        worker_id=_id_arg("worker"),
        category=category,
        created_from=_time_arg("created_from", end=False),
        created_to=_time_arg("created_to", end=True),
        scheduled_from=_time_arg("scheduled_from", end=False),
        scheduled_to=_time_arg("scheduled_to", end=True),
        overdue=request.args.get("overdue", "") in ("1", "on", "true"),
    )


def _filter_args() -> dict[str, str]:
    """The list's filters as given in the URL (for links that keep them)."""
    return {name: request.args[name] for name in FILTER_ARGS if request.args.get(name)}


@blp.get("/jobs")
@reads_replica
def jobs() -> str:
    """Jobs newest first, filtered (all in the URL) and cursor-paged; stuck ones on top."""
    filters = _filters()
    after = _id_arg("after")
    s = db_session()
    now, grace = clock.now(), settings().stuck_step_grace_seconds
    overdue, overdue_total = queries.attention(
        s, now=now, grace_seconds=grace, status=filters.status
    )
    page = queries.find_jobs(
        s, filters, now=now, grace_seconds=grace, after=after, per_page=PER_PAGE
    )
    return render_template(
        "ops/jobs.html",
        f=filters,
        args=_filter_args(),
        status=filters.status,
        after=after,
        page=page,
        rows=page.rows,
        total=page.total,
        categories=queries.category_names(s),
        overdue=overdue,
        overdue_total=overdue_total,
        grace=grace,
        bulk_actions={name: label for name, (label, _fn) in operator.ACTIONS.items()},
    )


@blp.get("/jobs/find")
def find_job() -> ResponseReturnValue:
    """Jump to a job by its id."""
    return redirect(url_for("ops.job", job_id=_int_arg("id", 0, 1, MAX_ROW_ID)))


@blp.get("/jobs/<int:job_id>")
def job(job_id: int) -> str:
    """One job: its state, timers, full history and side rows, and the operator's action."""
    detail = None if job_id > MAX_ROW_ID else queries.job_detail(db_session(), job_id)
    if detail is None:
        abort(404, f"Job {job_id} not found.")
    step = STEP_FOR_STATUS.get(detail.job.status)
    pending = detail.job.step_due_at is not None or detail.job.timer_at is not None
    policy = policies.policy_of(db_session(), detail.job, settings())
    return render_template(
        "ops/job.html",
        d=detail,
        job=detail.job,
        now=clock.now(),
        can_retry=detail.job.status == JobStatus.PAYMENT_FAILED,
        can_cancel=detail.job.status in CANCELLABLE,
        can_rekick=step is not None and pending,
        pending_step=step.value if step else None,
        deadlines=helpers.pending_deadlines(detail.job, [o for o, _name in detail.opportunities]),
        max_attempts=policy.payment_max_attempts,
        policy=policy,
        can_upgrade=detail.job.status not in TERMINAL,
    )


def _act(name: str, job_id: int) -> ResponseReturnValue:
    if job_id > MAX_ROW_ID:
        abort(404, f"Job {job_id} not found.")
    _label, action = operator.ACTIONS[name]
    reason = request.form.get("reason", "")
    _job, dues = action(db_session(), job_id, step_context(job_id), reason)
    commit(dues)
    log.info("ops %s", name, extra={"job_id": job_id})
    flash(DONE[name].format(job_id=job_id))
    return redirect(url_for("ops.job", job_id=job_id), 303)


@blp.post("/jobs/<int:job_id>/payment/retry")
def retry_payment(job_id: int) -> ResponseReturnValue:
    """payment_failed → completed, as ``POST /v1/jobs/<id>/payment/retry`` does, with a reason."""
    return _act("retry_payment", job_id)


@blp.post("/jobs/<int:job_id>/cancel")
def cancel(job_id: int) -> ResponseReturnValue:
    """Cancel the job, with a reason, where the lifecycle allows it."""
    return _act("cancel", job_id)


@blp.post("/jobs/<int:job_id>/rekick")
def rekick(job_id: int) -> ResponseReturnValue:
    """Send the job's pending step again, with a reason."""
    return _act("rekick", job_id)


@blp.post("/jobs/<int:job_id>/dispute/resolve")
def resolve_dispute(job_id: int) -> ResponseReturnValue:
    """Resolve the job's dispute with a refund and a reason, as the API's resolve does."""
    if job_id > MAX_ROW_ID:
        abort(404, f"Job {job_id} not found.")
    try:
        refund_cents = int(request.form.get("refund_cents", ""))
    except ValueError:
        abort(400, "The refund must be a whole number of cents.")
    s = db_session()
    dispute = disputes.resolve_dispute(
        s,
        job_id,
        operator.OPERATOR_PRINCIPAL,
        step_context(job_id),
        refund_cents=refund_cents,
        note=request.form.get("reason", ""),
    )
    if dispute.refund_cents:
        send_refund_after_commit(s, dispute.id)
    commit()
    log.info("ops resolve_dispute", extra={"job_id": job_id})
    flash(f"The dispute of job {job_id} is resolved; a refund of {refund_cents} cents follows.")
    return redirect(url_for("ops.job", job_id=job_id), 303)


@blp.get("/finance.csv")
@reads_replica
def finance_csv() -> Response:
    """Charges, refunds and fees per day (UTC) as CSV, ``?from=`` and ``?to=`` (dates)."""
    start, end = _time_arg("from", end=False), _time_arg("to", end=False)
    days = ledger_days(db_session(), start.date() if start else None, end.date() if end else None)
    return Response(
        "".join(csv_lines(days)),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="gigco-ledger.csv"'},
    )


@blp.post("/jobs/<int:job_id>/policy/upgrade")
def upgrade_policy(job_id: int) -> ResponseReturnValue:
    """Move the job to the newest lifecycle policy, with a reason."""
    return _act("upgrade_policy", job_id)


@dataclass(frozen=True)
class BulkResult:
    """What one job of a bulk action came to."""

    job_id: int
    ok: bool
    message: str
    status: str | None = None


def _selected_ids() -> list[int]:
    ids: list[int] = []
    for raw in request.form.getlist("job"):
        try:
            job_id = int(raw)
        except ValueError:
            abort(400, "A selected job id is not a number.")
        if not 1 <= job_id <= MAX_ROW_ID:
            abort(400, "A selected job id is out of range.")
        if job_id not in ids:
            ids.append(job_id)
    if not ids:
        abort(400, "Select at least one job.")
    if len(ids) > BULK_MAX:
        abort(400, f"Select at most {BULK_MAX} jobs at once.")
    return ids


@blp.post("/jobs/bulk")
def bulk() -> Any:
    """A bulk action on the selected jobs: first a confirmation, then each job on its own.

    Every job goes through the same guarded operator function (and transaction) as the
    single-job buttons; one refusal does not stop or undo the others.
    """
    name = request.form.get("action", "")
    if name not in operator.ACTIONS:
        abort(400, "Pick an action.")
    label, action = operator.ACTIONS[name]
    ids = _selected_ids()
    reason = request.form.get("reason", "")
    back = _safe_back(request.form.get("back"))
    s = db_session()
    if request.form.get("confirm") != "yes":
        try:
            reason = operator.clean_reason(reason)
        except DomainError as error:
            abort(400, error.message)
        found = queries.jobs_by_id(s, ids)
        return render_template(
            "ops/bulk_confirm.html",
            action=name,
            label=label,
            jobs=found,
            missing=sorted(set(ids) - {j.id for j in found}),
            reason=reason,
            back=back,
        )
    results: list[BulkResult] = []
    for job_id in ids:
        try:
            job, dues = action(s, job_id, step_context(job_id), reason)
            status = job.status.value
            commit(dues)
        except DomainError as error:
            s.rollback()
            results.append(BulkResult(job_id, False, error.message))
            continue
        results.append(BulkResult(job_id, True, "done", status))
    done = sum(r.ok for r in results)
    log.info("ops bulk %s", name, extra={"jobs": len(ids), "done": done})
    return render_template(
        "ops/bulk_result.html", label=label, results=results, done=done, reason=reason, back=back
    )


def _safe_back(target: str | None) -> str:
    """The jobs list URL to go back to: only ``/ops/jobs`` with its query, else the list."""
    if target and target.isprintable() and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path == url_for("ops.jobs"):
            return target
    return url_for("ops.jobs")


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
