"""Task names, in one place: each is the dotted path of the task's definition."""

from __future__ import annotations

from gigco.lifecycle.schedule import Step

STEP_TASKS = "gigco.tasks.steps"  # one task per step, named after the step
SWEEP_TASK = "gigco.tasks.sweeps.sweep"
DELIVER_TASK = "gigco.tasks.webhooks.deliver"  # one webhook delivery
FAN_OUT_TASK = "gigco.tasks.webhooks.fan_out"  # a deliver task for each of many deliveries
REFUND_TASK = "gigco.tasks.refunds.take_refund"  # a resolved dispute's refund
ADVANCE_TASK = "gigco.tasks.test_clocks.advance_test_clock"  # a test clock's advance


def step_task_name(step: Step) -> str:
    """The Celery task that runs ``step``, e.g. ``gigco.tasks.steps.match_job``."""
    return f"{STEP_TASKS}.{step.value}"


def is_step_task(name: str) -> bool:
    """True for a step task's name (its first argument is a job id)."""
    return name.startswith(f"{STEP_TASKS}.")
