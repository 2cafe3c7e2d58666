"""One thin task per lifecycle step, named ``gigco.tasks.steps.<step>``; each runs one plain
function of ``gigco.lifecycle.steps``."""

from __future__ import annotations

from gigco.lifecycle.schedule import Step
from gigco.tasks.app import app
from gigco.tasks.base import LifecycleTask
from gigco.tasks.names import step_task_name


def _step_task(step: Step) -> LifecycleTask:
    def run(self: LifecycleTask, job_id: int) -> int:
        return self.run_step(step, job_id)

    run.__name__ = step.value
    run.__doc__ = f"Run the {step.value} step on one job (idempotent)."
    return app.task(bind=True, base=LifecycleTask, name=step_task_name(step))(run)


price_job = _step_task(Step.PRICE)
send_offer = _step_task(Step.SEND_OFFER)
expire_offer = _step_task(Step.EXPIRE_OFFER)
match_job = _step_task(Step.MATCH)
schedule_job = _step_task(Step.SCHEDULE)
mark_no_show = _step_task(Step.NO_SHOW)
flag_overrun = _step_task(Step.OVERRUN)
process_payment = _step_task(Step.PAY)
request_reviews = _step_task(Step.REQUEST_REVIEWS)
close_job = _step_task(Step.CLOSE)
charge_late_cancel_fee = _step_task(Step.LATE_CANCEL_FEE)
