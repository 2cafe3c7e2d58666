"""Celery: the app (``celery -A gigco.tasks``), one task per lifecycle step, beat sweeps."""

from gigco.tasks import probe, refunds, steps, sweeps, test_clocks, webhooks
from gigco.tasks.app import app, configure

__all__ = [
    "app",
    "configure",
    "probe",
    "refunds",
    "steps",
    "sweeps",
    "test_clocks",
    "webhooks",
]
