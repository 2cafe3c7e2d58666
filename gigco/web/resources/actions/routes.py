"""What consumers, workers and operators do to a job: each action a guarded transition."""

from __future__ import annotations

from collections.abc import Callable

from flask.views import MethodView
from sqlalchemy.orm import Session

from gigco.lifecycle import actions
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.principals import Principal
from gigco.models import Job
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import commit, session, step_context
from gigco.web.resources.actions.schemas import JobSchema
from gigco.web.schemas import errors

blp = Blueprint(
    "actions",
    __name__,
    url_prefix="/v1/jobs",
    description="Actions on a job: offer, matching, work, payment retry",
)

Action = Callable[[Session, int, Principal, StepContext], actions.Outcome]


def run_action(action: Action, job_id: int) -> Job:
    """Apply ``action`` as the caller, commit, then send whatever step became due."""
    job, dues = action(session(), job_id, current_principal(), step_context(job_id))
    commit(dues)
    return job


def _action_view(path: str, action: Action, summary: str) -> None:
    class ActionView(MethodView):
        @login_required()
        @blp.doc(security=BEARER, summary=summary)
        @blp.response(200, JobSchema)
        @errors(blp, 401, 403, 404, 409)
        def post(self, job_id: int) -> Job:
            return run_action(action, job_id)

    ActionView.__name__ = f"{action.__name__.title().replace('_', '')}View"
    blp.route(f"/<id:job_id>/{path}", endpoint=action.__name__)(ActionView)


_action_view("offer/accept", actions.accept_offer, "Accept the price offer (its consumer)")
_action_view("offer/reject", actions.reject_offer, "Reject the price offer (its consumer)")
_action_view("cancel", actions.cancel, "Cancel the job (its consumer)")
_action_view(
    "opportunity/accept",
    actions.accept_opportunity,
    "Take the job (a worker holding a pending opportunity)",
)
_action_view(
    "opportunity/decline",
    actions.decline_opportunity,
    "Pass on the job (a worker holding a pending opportunity)",
)
_action_view("start", actions.start, "Start the work (the assigned worker)")
_action_view(
    "withdraw",
    actions.withdraw,
    "Withdraw from the job (the assigned worker, before starting); matching starts again",
)
_action_view("complete", actions.complete, "Finish the work (the assigned worker)")
_action_view("payment/retry", actions.retry_payment, "Retry a failed payment (operator)")
_action_view(
    "policy/upgrade",
    actions.upgrade_policy,
    "Move the job to the newest lifecycle policy (operator); deadlines already set stand",
)
