"""Celery settings derived from GigCo's Settings (celeryconfig.py exposes them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kombu import Exchange, Queue

from gigco.broker import (
    QUEUES,
    RECOVERY_QUEUE,
    STEPS_QUEUE,
    SWEEPS_QUEUE,
    WEBHOOK_QUEUE,
    is_rabbitmq,
    transport_options,
)
from gigco.config import Settings
from gigco.tasks.names import DELIVER_TASK, SWEEP_TASK

__all__ = [
    "QUEUES",
    "RECOVERY_QUEUE",
    "ROUTES",
    "STEPS_QUEUE",
    "SWEEPS_QUEUE",
    "WEBHOOK_QUEUE",
    "celery_settings",
]

ROUTES = {SWEEP_TASK: {"queue": SWEEPS_QUEUE}, DELIVER_TASK: {"queue": WEBHOOK_QUEUE}}


def _rabbitmq_queues() -> dict[str, Any]:
    """Quorum queues on a topic exchange: native delayed delivery arms ETAs in the broker."""
    exchange = Exchange(STEPS_QUEUE, type="topic")
    return {
        "task_queues": [
            Queue(name, exchange, routing_key=name, queue_arguments={"x-queue-type": "quorum"})
            for name in QUEUES
        ],
        "task_default_queue": STEPS_QUEUE,
        "task_default_exchange": STEPS_QUEUE,
        "task_default_exchange_type": "topic",
        "task_default_routing_key": STEPS_QUEUE,
        "task_default_queue_type": "quorum",
        "worker_detect_quorum_queues": True,
        "broker_native_delayed_delivery_queue_type": "quorum",
        # Delayed delivery set up once per connect, not once per failover URL with sleeps
        # for a dead node; a control queue still locked by a dead node's connection is
        # declared again after a reconnect instead of stopping the worker
        # (gigco/tasks/consumer.py).
        "worker_consumer": "gigco.tasks.consumer:Consumer",
        "broker_channel_error_retry": True,
    }


def _plain_queues() -> dict[str, Any]:
    """Celery's own defaults for the exchange, restated so that reconfiguring one app from
    RabbitMQ to another broker (tests do) leaves nothing of the quorum setup behind."""
    return {
        "task_queues": tuple(Queue(name) for name in QUEUES),
        "task_default_queue": STEPS_QUEUE,
        "task_default_exchange": None,
        "task_default_exchange_type": "direct",
        "task_default_routing_key": None,
        "task_default_queue_type": "classic",
        "worker_consumer": "celery.worker.consumer:Consumer",
        "broker_channel_error_retry": False,
    }


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for ``settings``: JSON only, late acks, sweeps on beat."""
    queues = _rabbitmq_queues() if is_rabbitmq(settings.broker_url) else _plain_queues()
    sentinel = settings.broker_url.startswith("sentinel")
    return {
        "broker_url": settings.broker_url,
        # A Sentinel failover must not stop the worker (gigco/tasks/sentinel.py).
        "broker_transport": "gigco.tasks.sentinel:SentinelTransport" if sentinel else None,
        "broker_connection_retry_on_startup": True,
        # A request publishes after its commit: a broker that accepts TCP and never answers
        # costs it at most two timeouts (the step waits in the database for the sweeper).
        "broker_connection_timeout": settings.broker_timeout_seconds,
        "broker_transport_options": transport_options(settings),
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        **queues,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_routes": ROUTES,
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
