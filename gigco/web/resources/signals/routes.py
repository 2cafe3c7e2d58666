"""What consumers, workers and operators do to a job: each a guarded transition."""

from __future__ import annotations

from collections.abc import Callable

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from gigco.lifecycle import actions
from gigco.lifecycle.access import Principal
from gigco.lifecycle.context import StepContext
from gigco.models import Job
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.db import commit, session, step_context
from gigco.web.schemas import JobSchema, errors

blp = Blueprint(
    "signals",
    __name__,
    url_prefix="/v1/jobs",
    description="Lifecycle actions: offer, matching, work, payment retry",
)

Signal = Callable[[Session, int, Principal, StepContext], actions.Outcome]


def run_signal(signal: Signal, job_id: int) -> Job:
    """Apply ``signal`` as the caller, commit, then send whatever step became due."""
    job, dues = signal(session(), job_id, current_principal(), step_context())
    commit(dues)
    return job


def _signal_view(path: str, signal: Signal, summary: str) -> None:
    class SignalView(MethodView):
        @login_required()
        @blp.doc(security=BEARER, summary=summary)
        @blp.response(200, JobSchema)
        @errors(blp, 401, 403, 404, 409)
        def post(self, job_id: int) -> Job:
            return run_signal(signal, job_id)

    SignalView.__name__ = f"{signal.__name__.title().replace('_', '')}View"
    blp.route(f"/<int:job_id>/{path}", endpoint=signal.__name__)(SignalView)


_signal_view("offer/accept", actions.accept_offer, "Accept the price offer (its consumer)")
_signal_view("offer/reject", actions.reject_offer, "Reject the price offer (its consumer)")
_signal_view("cancel", actions.cancel, "Cancel the job (its consumer)")
_signal_view(
    "opportunity/accept",
    actions.accept_opportunity,
    "Take the job (a worker holding a pending opportunity)",
)
_signal_view(
    "opportunity/decline",
    actions.decline_opportunity,
    "Pass on the job (a worker holding a pending opportunity)",
)
_signal_view("start", actions.start, "Start the work (the assigned worker)")
_signal_view("complete", actions.complete, "Finish the work (the assigned worker)")
_signal_view("payment/retry", actions.retry_payment, "Retry a failed payment (operator)")
