"""Sending deadlines to the broker: which ones a sweep sends, and that each keeps its time."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from kombu import Connection
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from gigco import clock
from gigco.broker import STEPS_QUEUE
from gigco.config import Settings
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.transitions import Due
from gigco.tasks import configure as configure_celery
from gigco.tasks.dispatch import NATIVE_DELAY_FLOOR, broker_timing, send
from tests.brokers import fresh_vhost, rabbitmq_queue, rabbitmq_url
from tests.harness.polling import wait_for


def test_a_deadline_under_a_second_away_is_armed_on_rabbitmq_within_about_a_second(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery refuses a native-delay countdown under one second; GigCo sends it a second out
    instead of failing the send (and with it the rest of a sweep's batch), even when the
    sending thread stalls between reading the clock and Celery reading its own."""
    with fresh_vhost() as vhost:
        url = rabbitmq_url(vhost)
        app = configure_celery(settings.replace(broker_url=url))
        try:
            # What a worker declares at its start: the delay exchanges and the steps queue
            # bound to them.
            with Connection(url) as conn:
                declare_native_delayed_delivery_exchanges_and_queues(conn, "quorum")
                for queue in app.amqp.queues.values():
                    queue.bind(conn).declare()
                    bind_queue_to_native_delayed_delivery_exchange(conn, queue)
            now = clock.now()
            at = now + dt.timedelta(milliseconds=300)
            assert broker_timing(at) == {"countdown": NATIVE_DELAY_FLOOR.total_seconds()}
            # A 50 ms stall after our clock was read: Celery's clock is that much later.
            stalled = app.now
            monkeypatch.setattr(app, "now", lambda: stalled() + dt.timedelta(milliseconds=50))
            soon = Due(Step.EXPIRE_OFFER, 1, at)
            just_over = Due(Step.CLOSE, 2, clock.now() + NATIVE_DELAY_FLOOR * 1.01)
            assert send([soon, just_over], now=now) == 2
            monkeypatch.undo()
            started = clock.now()
            wait_for(
                lambda: rabbitmq_queue(url)[0] == 2,
                timeout=5,
                every=0.05,
                what="both delayed steps in the steps queue",
            )
            assert clock.now() - at <= dt.timedelta(seconds=1.5), clock.now() - started
        finally:
            configure_celery(settings)


def test_redis_keeps_the_exact_eta_on_this_hosts_clock(settings: Settings) -> None:
    # A deadline is a time on the database's clock; the ETA a worker judges by its own host's
    # clock is the same instant on this host's clock (here the two agree within a round trip).
    at = clock.now() + dt.timedelta(milliseconds=300)
    assert broker_timing(at) == {"eta": at - clock.offset()}
    assert abs(clock.offset()) < dt.timedelta(milliseconds=50)


@dataclass(frozen=True)
class Armed:
    """A step task as it sits in the broker: its job and the ETA a worker waits for."""

    job_id: int
    eta: dt.datetime | None


def _armed(body: bytes, headers: dict[str, Any]) -> Armed:
    args, _kwargs, _embed = json.loads(body)
    eta = headers.get("eta")
    return Armed(args[0], dt.datetime.fromisoformat(eta) if eta else None)


@contextlib.contextmanager
def _broker(
    settings: Settings, name: str
) -> Iterator[tuple[str | None, Callable[[], list[Armed]]]]:
    """The process configured for broker ``name``: the queue to send to (None: the steps
    queue) and a reader of every step task that has reached it so far."""
    if name == "redis":
        # A queue of its own: the run's live worker, if any, consumes the steps queue.
        queue = f"dispatch_test_{uuid.uuid4().hex[:8]}"
        client = redis.Redis.from_url(settings.broker_url)
        configure_celery(settings)

        def on_redis() -> list[Armed]:
            messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
            return [_armed(base64.b64decode(m["body"]), m["headers"]) for m in messages]

        try:
            yield queue, on_redis
        finally:
            client.delete(queue)
        return
    with fresh_vhost() as vhost:
        url = rabbitmq_url(vhost)
        app = configure_celery(settings.replace(broker_url=url))
        try:
            with Connection(url) as conn:
                declare_native_delayed_delivery_exchanges_and_queues(conn, "quorum")
                for declared in app.amqp.queues.values():
                    declared.bind(conn).declare()
                    bind_queue_to_native_delayed_delivery_exchange(conn, declared)
                arrived: list[Armed] = []

                def on_rabbitmq() -> list[Armed]:
                    while (message := conn.default_channel.basic_get(STEPS_QUEUE)) is not None:
                        arrived.append(_armed(message.body, message.headers))
                    return arrived

                yield None, on_rabbitmq
        finally:
            configure_celery(settings)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_sweep_arms_what_the_next_sweep_would_see_too_late_and_nothing_far_out(
    settings: Settings, broker: str
) -> None:
    """A deadline due before the next sweep, or on RabbitMQ less than the delay queues'
    whole second after it, is sent now: left to the next sweep it would fire late. One many
    sweeps away stays in the database. What is sent carries its deadline, so no worker runs
    it early (RabbitMQ's delay queues round down to whole seconds; the worker waits out the
    rest)."""
    interval = dt.timedelta(seconds=settings.sweep_interval_seconds)
    slack = dt.timedelta(milliseconds=100)
    with _broker(settings, broker) as (queue, arrived):
        now = clock.now()
        next_sweep = now + interval
        least_delay = NATIVE_DELAY_FLOOR if broker == "rabbitmq" else dt.timedelta(0)
        soon = Due(Step.CLOSE, 1, next_sweep + least_delay - slack)
        far = Due(Step.CLOSE, 2, now + 20 * interval)
        assert send([soon, far], now=now, queue=queue) == 1
        offset = clock.offset()  # the ETA is on this host's clock; the deadline the database's
        (armed,) = wait_for(arrived, timeout=5, what="the near deadline's task in the broker")
        assert armed.job_id == soon.job_id
        assert armed.eta is not None
        eta = armed.eta + offset
        assert eta >= soon.at, (eta, soon.at)
        assert eta - soon.at < slack
        assert [a.job_id for a in arrived()] == [soon.job_id]
