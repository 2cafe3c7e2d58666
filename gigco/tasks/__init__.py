"""Celery: the app (``celery -A gigco.tasks``), one task per lifecycle step, beat sweeps."""

from gigco.tasks import lifecycle, probe, sweeps
from gigco.tasks.app import app, configure

celery = app

__all__ = ["app", "celery", "configure", "lifecycle", "probe", "sweeps"]
