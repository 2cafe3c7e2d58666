"""How GigCo talks to its broker: its queues and kombu transport options from settings
(Celery and the health checks share them)."""

from __future__ import annotations

from typing import Any

from gigco.config import Settings

STEPS_QUEUE = "celery"  # lifecycle steps: Celery's default queue name
SWEEPS_QUEUE = "sweeps"
WEBHOOK_QUEUE = "webhooks"
# Sweeps have their own queue, so a backlog of steps never delays one; webhook deliveries
# wait on receivers, so they have theirs, and production may run `-Q webhooks` workers
# apart. A worker started without -Q consumes every queue here.
QUEUES = (STEPS_QUEUE, SWEEPS_QUEUE, WEBHOOK_QUEUE)


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
