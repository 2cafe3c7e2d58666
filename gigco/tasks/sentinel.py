"""kombu's Redis Sentinel transport, with a closed connection's failure reported as a
connection error.

When a Sentinel master dies, Celery's consumer closes the lost connection; closing the
channel restores its unacked messages, which needs a Redis client, and kombu's
``SentinelChannel`` then builds one from its connection's ``client`` — already ``None``.
The ``AttributeError`` is not a connection error, so Celery does not ignore it: the worker
stopped with "Unrecoverable error" in about one failover in three
(``tests/clusters/test_redis_sentinel.py``). Raised as a connection error instead, it is
ignored as Celery intends, the consumer reconnects through the sentinels, and the unacked
messages wait for the visibility timeout (their steps for the sweeper).

Celery's consumer retries a lost connection 2, 4, 6 … s apart (kombu's defaults, which it
does not let us set): a promotion that came just after an attempt (the sentinels' down-after
and election, 1.5-2.5 s in the tests) kept the worker away for the rest of the next step.
So one attempt keeps asking the sentinels for a master that answers, every
``POLL_SECONDS``, for up to the connection's connect timeout (``GIGCO_BROKER_TIMEOUT_SECONDS``):
the worker is back within a poll of the promotion. Only tries that fail at once (refused,
no master yet: a failover's answers) are repeated; a try that waits out its own timeout, as
on a broker that never answers, ends the attempt as before. So an attempt lasts at most the
connect timeout plus its last try's own bound, and a publish to a silent broker still costs
the two timeouts ``celery_settings`` promises.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's, failing with a connection error once its connection is closed."""

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


POLL_SECONDS = 0.1


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport on ``SentinelChannel``, waiting out a promotion."""

    Channel = SentinelChannel

    def establish_connection(self) -> Any:
        """kombu's, asked again every ``POLL_SECONDS`` while no master answers, for up to
        the connection's connect timeout."""
        patience = getattr(self.client, "connect_timeout", None) or POLL_SECONDS
        deadline = time.monotonic() + patience
        while True:
            tried_at = time.monotonic()
            try:
                return super().establish_connection()
            except self.connection_errors:
                now = time.monotonic()
                if now - tried_at >= patience or now + POLL_SECONDS >= deadline:
                    raise
                time.sleep(POLL_SECONDS)
