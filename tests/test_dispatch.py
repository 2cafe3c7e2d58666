"""Sending a near deadline: RabbitMQ's native delayed delivery counts whole seconds."""

from __future__ import annotations

import datetime as dt

import pytest
from kombu import Connection
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.transitions import Due
from gigco.tasks import configure as configure_celery
from gigco.tasks.dispatch import NATIVE_DELAY_FLOOR, arming_horizon, broker_timing, send
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


def test_redis_keeps_the_exact_eta(settings: Settings) -> None:
    at = clock.now() + dt.timedelta(milliseconds=300)
    assert broker_timing(at) == {"eta": at}


def test_rabbitmq_arms_deadlines_a_second_further_ahead(settings: Settings) -> None:
    """So the sweep that first sees a deadline sees it at least a second ahead: the delay
    queues never have to round it up to a second (which made it fire up to a second late)."""
    interval = dt.timedelta(seconds=settings.sweep_interval_seconds)
    assert arming_horizon(settings) == 1.5 * interval
    rabbit = settings.replace(broker_url="amqp://guest:guest@127.0.0.1:5672//")
    assert arming_horizon(rabbit) == 1.5 * interval + NATIVE_DELAY_FLOOR
