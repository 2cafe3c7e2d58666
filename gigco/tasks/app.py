"""The Celery app, configured from GIGCO_* settings; nothing connects at import time."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from gigco.config import Settings
from gigco.tasks import runtime as rt
from gigco.tasks.celery_settings import celery_settings

app = Celery("gigco")
app.config_from_object("celeryconfig", silent=False, force=False)


def configure(settings: Settings) -> Celery:
    """Point the app and the task runtime at ``settings`` (web app factory, tests)."""
    app.conf.update(celery_settings(settings))
    rt.use_settings(settings)
    return app


@worker_process_init.connect
def _fresh_connections_after_fork(**_: object) -> None:
    rt.runtime().dispose()
