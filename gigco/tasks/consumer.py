"""The worker's consumer: Celery's, with native delayed delivery set up once per connect and
a control queue still locked by a dead connection retried, not fatal.

Celery's ``DelayedDelivery`` bootstep (``celery/worker/consumer/delayed_delivery.py``)
declares the delay exchanges and binds GigCo's queues on *every* URL of the broker list,
each with up to three retries 1, 3 and 5 s apart, and runs on every reconnect before the
consumer consumes. Given a cluster's nodes as kombu failover URLs
(``amqp://a;amqp://b;amqp://c``), a dead node costs the worker ~18 s of doing nothing after
it has already reconnected to a live node. The nodes of one cluster share exchanges,
queues and bindings, so one setup through the failover connection (which skips a refusing
node at once) does for all of them.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.delayed_delivery import DelayedDelivery
from kombu.transport.native_delayed_delivery import (
    declare_native_delayed_delivery_exchanges_and_queues,
)
from kombu.utils.url import maybe_sanitize_url

log = logging.getLogger(__name__)

CELERY_STEP = "celery.worker.consumer.delayed_delivery:DelayedDelivery"


class ClusterDelayedDelivery(DelayedDelivery):
    """Native delayed delivery, set up once through the failover list, a dead node skipped."""

    def start(self, c: Any) -> None:
        """Declare the delay exchanges and bind the queues on the first node that answers;
        a failure is logged (as Celery does) and the consumer starts anyway: the
        declarations are durable and were made by an earlier start."""
        app = c.app
        self._validate_configuration(app)
        nodes = len(self._validate_broker_urls(app.conf.broker_url))
        try:
            with app.connection_for_write() as connection:
                # One try per node, no sleep between them (kombu sleeps once per full cycle).
                connection.ensure_connection(max_retries=nodes)
                declare_native_delayed_delivery_exchanges_and_queues(
                    connection, app.conf.broker_native_delayed_delivery_queue_type
                )
                self._bind_queues(app, connection)
        except Exception as error:
            log.warning(
                "could not set up native delayed delivery on %s: %s",
                maybe_sanitize_url(app.conf.broker_url),
                error,
            )


class Consumer(CeleryConsumer):
    """Celery's consumer with ``ClusterDelayedDelivery`` in place of ``DelayedDelivery``, and
    a recoverable channel error retried as a lost connection is.

    When a cluster node dies, the worker's exclusive control queue (``<name>.celery.pidbox``)
    stays locked by its dead connection for a moment; the worker, reconnected to a live node
    within milliseconds, is refused its declare (``RESOURCE_LOCKED``), which Celery's consumer
    treats as unrecoverable and exits on. With ``broker_channel_error_retry`` it reconnects
    and declares again; only the errors the transport calls recoverable are retried, so a
    queue declared with other arguments (``PRECONDITION_FAILED``) still stops the worker.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_errors = self.conninfo.recoverable_channel_errors

    class Blueprint(CeleryConsumer.Blueprint):
        default_steps = [
            f"{__name__}:ClusterDelayedDelivery" if step == CELERY_STEP else step
            for step in CeleryConsumer.Blueprint.default_steps
        ]
