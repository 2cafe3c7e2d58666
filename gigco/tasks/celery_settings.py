"""Celery settings derived from GigCo's Settings (celeryconfig.py exposes them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kombu import Exchange, Queue

from gigco.config import Settings

QUEUE = "celery"


def is_rabbitmq(broker_url: str) -> bool:
    """True for an AMQP (RabbitMQ) broker URL."""
    return broker_url.startswith(("amqp", "pyamqp"))


def transport_options(settings: Settings) -> dict[str, Any]:
    """kombu transport options: bounded socket waits, so a blackholed broker fails fast."""
    timeout = settings.broker_timeout_seconds
    if settings.broker_url.startswith("redis"):
        # Redis redelivers an unacked message after visibility_timeout; ETAs never reach
        # that far out. The socket timeouts bound a command to a broker that never answers.
        return {
            "visibility_timeout": 3600,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
    if is_rabbitmq(settings.broker_url):
        # Publisher confirms: a send returns once RabbitMQ has the message (in a quorum
        # queue: on a majority of nodes), not when it left our socket.
        return {"confirm_publish": True}
    return {}


def _rabbitmq_settings() -> dict[str, Any]:
    """Quorum queues on a topic exchange: native delayed delivery arms ETAs in the broker."""
    exchange = Exchange(QUEUE, type="topic")
    return {
        "task_queues": [
            Queue(
                QUEUE,
                exchange,
                routing_key=QUEUE,
                queue_arguments={"x-queue-type": "quorum"},
            )
        ],
        "task_default_queue": QUEUE,
        "task_default_exchange": QUEUE,
        "task_default_exchange_type": "topic",
        "task_default_routing_key": QUEUE,
        "task_default_queue_type": "quorum",
        "worker_detect_quorum_queues": True,
        "broker_native_delayed_delivery_queue_type": "quorum",
    }


# Celery's own defaults, restated so that reconfiguring one app from RabbitMQ to another
# broker (tests do) leaves nothing of the quorum setup behind.
_PLAIN_QUEUES: dict[str, Any] = {
    "task_queues": None,
    "task_default_queue": QUEUE,
    "task_default_exchange": None,
    "task_default_exchange_type": "direct",
    "task_default_routing_key": None,
    "task_default_queue_type": "classic",
}


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for ``settings``: JSON only, late acks, sweeps on beat."""
    queues = _rabbitmq_settings() if is_rabbitmq(settings.broker_url) else _PLAIN_QUEUES
    return {
        "broker_url": settings.broker_url,
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
                "task": "gigco.sweeps.sweep",
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "options": {"expires": settings.sweep_interval_seconds},
            }
        },
    }
