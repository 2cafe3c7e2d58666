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
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's, failing with a connection error once its connection is closed."""

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport on ``SentinelChannel``."""

    Channel = SentinelChannel
