"""The two production brokers for tests: Redis (a database number) and RabbitMQ (a fresh
vhost on the machine's server, made and deleted with ``rabbitmqctl``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

BROKERS = ("redis", "rabbitmq")
# Run a test once per broker: ``@both_brokers`` (the ``broker_url`` fixture reads the param).
both_brokers = pytest.mark.parametrize("broker_url", BROKERS, indirect=True)
# The same for a resilience scenario (tests/resilience/conftest.py ``broker``).
on_both_brokers = pytest.mark.parametrize("broker", BROKERS, indirect=True)

RABBITMQ_HOST = os.environ.get("GIGCO_TEST_RABBITMQ_HOST", "127.0.0.1")
RABBITMQ_PORT = int(os.environ.get("GIGCO_TEST_RABBITMQ_PORT", "5672"))
RABBITMQ_USER = os.environ.get("GIGCO_TEST_RABBITMQ_USER", "guest")


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl -q args``; its output."""
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def cannot_use_rabbitmq() -> str | None:
    """Why this machine cannot give a test a RabbitMQ vhost, or None when it can."""
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl not found (install rabbitmq-server; .ci/run starts it)"
    try:
        socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=2).close()
    except OSError as error:
        return f"RabbitMQ is not listening on {RABBITMQ_HOST}:{RABBITMQ_PORT}: {error}"
    return None


def rabbitmq_url(vhost: str, port: int | None = None) -> str:
    """The AMQP URL of ``vhost`` (through ``port`` when given, say a proxy)."""
    return f"amqp://{RABBITMQ_USER}:{RABBITMQ_USER}@{RABBITMQ_HOST}:{port or RABBITMQ_PORT}/{vhost}"


def add_vhost(vhost: str) -> None:
    """Create ``vhost`` with full permissions for the test user."""
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, RABBITMQ_USER, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    """Delete ``vhost``: its queues, messages and connections go with it."""
    rabbitmqctl("delete_vhost", vhost)


@contextlib.contextmanager
def fresh_vhost(prefix: str = "gigco_test") -> Iterator[str]:
    """A new, empty vhost for the duration; yields its name."""
    reason = cannot_use_rabbitmq()
    if reason is not None:
        pytest.skip(reason)
    vhost = f"{prefix}_{uuid.uuid4().hex[:10]}"
    add_vhost(vhost)
    try:
        yield vhost
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            delete_vhost(vhost)


def rabbitmq_queue(url: str, queue: str = "celery") -> tuple[int, int]:
    """(messages ready, consumers) of ``queue``; (0, 0) when it does not exist yet."""
    with Connection(url, connect_timeout=5) as conn:
        try:
            ok = conn.default_channel.queue_declare(queue, passive=True)
        except Exception:
            return 0, 0
        return ok.message_count, ok.consumer_count
