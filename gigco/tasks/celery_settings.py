"""Celery settings derived from GigCo's Settings (celeryconfig.py exposes them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kombu import Queue

from gigco.config import Settings
from gigco.tasks.names import DELIVER_TASK, SWEEP_TASK

STEPS_QUEUE = "celery"  # lifecycle steps: Celery's default queue name
SWEEPS_QUEUE = "sweeps"
WEBHOOK_QUEUE = "webhooks"


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for ``settings``: JSON only, late acks, sweeps on beat."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        # Redis redelivers an unacked message after this; ETAs never reach that far out.
        "broker_transport_options": (
            {"visibility_timeout": 3600} if settings.broker_url.startswith("redis") else {}
        ),
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        # Sweeps have their own queue, so a backlog of steps never delays one; webhook
        # deliveries wait on receivers, so they have theirs, and production may run
        # `-Q webhooks` workers apart. A worker started without -Q consumes every queue here.
        "task_queues": (Queue(STEPS_QUEUE), Queue(SWEEPS_QUEUE), Queue(WEBHOOK_QUEUE)),
        "task_default_queue": STEPS_QUEUE,
        "task_routes": {
            SWEEP_TASK: {"queue": SWEEPS_QUEUE},
            DELIVER_TASK: {"queue": WEBHOOK_QUEUE},
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 4,
        # Task events cost three broker writes per task; Flower switches them on in the
        # workers (its enable_events option) for as long as it runs.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": {
            "sweep": {
                "task": SWEEP_TASK,
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "options": {"expires": settings.sweep_interval_seconds},
            }
        },
    }
