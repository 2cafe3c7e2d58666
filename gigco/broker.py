"""How GigCo talks to its broker: its queues and kombu transport options from settings
(Celery and the health checks share them)."""

from __future__ import annotations

from typing import Any

from gigco.config import Settings

STEPS_QUEUE = "celery"  # lifecycle steps: Celery's default queue name
SWEEPS_QUEUE = "sweeps"
RECOVERY_QUEUE = "recovery"  # steps the sweeper sends late: overdue deadlines, stuck steps
WEBHOOK_QUEUE = "webhooks"
# Sweeps have their own queue, so a backlog of steps never delays one; steps sent late have
# theirs, so a backlog after an outage never holds up a fresh deadline (the worker takes
# from its queues in turn); webhook deliveries wait on receivers, so they have theirs, and
# production may run `-Q webhooks` workers apart. A worker started without -Q consumes
# every queue here.
QUEUES = (STEPS_QUEUE, SWEEPS_QUEUE, RECOVERY_QUEUE, WEBHOOK_QUEUE)


def is_rabbitmq(broker_url: str) -> bool:
    """True for an AMQP (RabbitMQ) broker URL."""
    return broker_url.startswith(("amqp", "pyamqp"))


def is_redis(broker_url: str) -> bool:
    """True for a Redis broker URL, direct or through Sentinel."""
    return broker_url.startswith(("redis", "sentinel"))


def transport_options(settings: Settings) -> dict[str, Any]:
    """kombu transport options: bounded socket waits, so a blackholed broker fails fast."""
    timeout = settings.broker_timeout_seconds
    if is_redis(settings.broker_url):
        # Redis redelivers an unacked message after visibility_timeout; ETAs never reach
        # that far out. The socket timeouts bound a command to a broker that never answers.
        options: dict[str, Any] = {
            "visibility_timeout": 3600,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        if settings.broker_sentinel_master:
            # sentinel://s1;sentinel://s2: ask the sentinels which node is this master now,
            # with the same bound on each sentinel.
            options["master_name"] = settings.broker_sentinel_master
            options["sentinel_kwargs"] = {
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
            }
        return options
    if is_rabbitmq(settings.broker_url):
        # Publisher confirms: a send returns once RabbitMQ has the message (in a quorum
        # queue: on a majority of nodes), not when it left our socket.
        # read/write_timeout bound every other wait on the socket too: without a quorum,
        # a queue declare after a reconnect is never answered (tests/clusters).
        return {"confirm_publish": True, "read_timeout": timeout, "write_timeout": timeout}
    return {}
