"""The broker under a resilience scenario: the suite's private redis-server, or a fresh
vhost on the machine's RabbitMQ. One interface, so each fault runs on both."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kombu import Connection

from gigco.tasks.names import is_step_task
from tests.brokers import add_vhost, delete_vhost, rabbitmq_url, rabbitmqctl
from tests.resilience.services import PrivateRedis

QUEUE = "celery"


@dataclass
class RedisBroker:
    """Database 1 of the private redis-server."""

    server: PrivateRedis
    kind: str = "redis"

    @property
    def url(self) -> str:
        """The broker URL."""
        return self.server.url()

    def reset(self) -> None:
        """Empty it before a test."""
        self.server.client().flushdb()

    def waiting_steps(self) -> int:
        """Lifecycle step messages waiting in the queue (sweeps not counted)."""
        return _steps(self.server.client().lrange(QUEUE, 0, -1))

    def purge(self) -> tuple[int, int]:
        """Delete the step queue's list (what ``celery purge`` does on Redis), leaving every
        other key; what it held: (messages, of which steps)."""
        with self.server.client().pipeline(transaction=True) as pipe:
            messages, _ = pipe.lrange(QUEUE, 0, -1).delete(QUEUE).execute()
        return len(messages), _steps(messages)

    def counts(self) -> tuple[int, int]:
        """(messages queued, messages delivered and unacked)."""
        client = self.server.client()
        return client.llen(QUEUE), client.hlen("unacked")

    def lose_everything(self) -> tuple[int, int]:
        """FLUSHDB, as a restart without persistence does; what was (queued, unacked)."""
        with self.server.client().pipeline(transaction=True) as pipe:
            queued, unacked, _ = pipe.llen(QUEUE).hlen("unacked").flushdb().execute()
        return queued, unacked


@dataclass
class RabbitBroker:
    """A vhost of its own on the machine's RabbitMQ (quorum queues, as in production)."""

    vhost: str
    kind: str = "rabbitmq"

    @property
    def url(self) -> str:
        """The broker URL."""
        return rabbitmq_url(self.vhost)

    def reset(self) -> None:
        """Nothing: the vhost is new."""

    def counts(self) -> tuple[int, int]:
        """(messages ready, messages delivered and unacked) in the task queue."""
        out = rabbitmqctl(
            "list_queues", "-p", self.vhost, "--no-table-headers",
            "name", "messages_ready", "messages_unacknowledged",
        )  # fmt: skip
        for line in out.splitlines():
            name, ready, unacked = line.split()
            if name == QUEUE:
                return int(ready), int(unacked)
        return 0, 0

    def waiting_steps(self) -> int:
        """Messages in the task queue, ready or held by a (frozen) worker.

        RabbitMQ pushes up to the prefetch window to a consumer even while it is frozen,
        and its queue cannot be browsed without taking messages; beat's sweeps are counted
        too (the scenarios also wait for every held-back job to be posted: with publisher
        confirms, each of those steps is in the queue once its POST answered).
        """
        return sum(self.counts())

    def purge(self) -> tuple[int, int]:
        """Purge the step queue (``queue.purge``, as ``celery purge`` or ``rabbitmqctl
        purge_queue`` do): its ready messages go, those delivered to a consumer stay; what
        it held: (messages, of which steps — all of them: sweeps and deliveries have their
        own queues)."""
        with Connection(self.url, connect_timeout=5) as conn:
            purged = conn.default_channel.queue_purge(QUEUE) or 0
        return purged, purged

    def lose_everything(self) -> tuple[int, int]:
        """Delete and re-create the vhost: every queue, message and connection is gone, as
        in a node restart that lost its data; what was (ready, unacked)."""
        counts = self.counts()
        delete_vhost(self.vhost)
        add_vhost(self.vhost)
        return counts


def _steps(messages: list[bytes]) -> int:
    """How many of Redis' raw ``messages`` are lifecycle steps."""
    tasks = [json.loads(m).get("headers", {}).get("task", "") for m in messages]
    return sum(1 for task in tasks if is_step_task(task))


Broker = RedisBroker | RabbitBroker
