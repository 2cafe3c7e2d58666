"""Kicking the outbox: one broker message per committing transaction, fanned out per delivery."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from celery.signals import before_task_publish
from sqlalchemy.orm import Session, sessionmaker

from gigco import webhooks
from gigco.config import Settings
from gigco.lifecycle.history import record_event
from gigco.lifecycle.principals import Principal
from gigco.models import Role, WebhookDelivery
from gigco.tasks.names import DELIVER_TASK, FAN_OUT_TASK
from tests import factories
from tests.harness.polling import wait_for
from tests.harness.webhooks import Receiver


@pytest.fixture
def published() -> Iterator[list[tuple[str, Any]]]:
    """The (task name, arguments) of every message this process publishes."""
    sent: list[tuple[str, Any]] = []

    def record(sender: str | None = None, body: Any = None, **_: Any) -> None:
        sent.append((sender or "", list(body[0]) if isinstance(body, tuple) else body))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


@pytest.fixture
def lost_kicks() -> Iterator[None]:
    """Every commit's kick is lost (as in a broker flush): only what the test sends is sent."""
    from gigco.tasks.webhooks import send_deliveries

    webhooks.use_sender(lambda ids: None)
    yield
    webhooks.use_sender(send_deliveries)


def _endpoint(session: Session, who: Principal, url: str, settings: Settings) -> int:
    now = dt.datetime.now(dt.UTC)
    endpoint = webhooks.create_endpoint(
        session, who, url=url, event_types=None, description=None, settings=settings, now=now
    )
    return endpoint.id


def test_a_transaction_writing_many_deliveries_publishes_one_message(
    sessions: sessionmaker[Session],
    settings: Settings,
    committed: None,
    live_worker: Any,
    receiver: Receiver,
    published: list[tuple[str, Any]],
) -> None:
    """Two events, three endpoints: six rows, one message after the commit, six deliveries."""
    with sessions() as session, session.begin():
        job = factories.job(session)
        _endpoint(session, Principal(Role.OPERATOR), receiver.url("/operator"), settings)
        for path in ("/a", "/b"):
            consumer = Principal(Role.CONSUMER, job.consumer_id)
            _endpoint(session, consumer, receiver.url(path), settings)
        job_id = job.id
    published.clear()
    with sessions() as session, session.begin():
        seqs = [record_event(session, job_id, "review_received", actor="system").seq]
        seqs += [record_event(session, job_id, "review_received", actor="system").seq]
        assert published == []  # nothing before the commit
    assert [name for name, _ in published] == [FAN_OUT_TASK]
    (_, (kicks,)) = published[0]
    assert len(kicks) == 6 and all(at is None for _, at in kicks)
    wait_for(
        lambda: sum(len(receiver.at(p)) for p in ("/operator", "/a", "/b")) >= 6,
        timeout=20,
        what="the worker to fan the six deliveries out",
    )
    for path in ("/operator", "/a", "/b"):
        assert [r.json["data"]["seq"] for r in receiver.at(path)] == seqs  # in order


def test_a_rolled_back_transactions_rows_are_not_kicked_with_the_next_ones(
    sessions: sessionmaker[Session],
    settings: Settings,
    committed: None,
    published: list[tuple[str, Any]],
) -> None:
    with sessions() as session, session.begin():
        job = factories.job(session)
        _endpoint(session, Principal(Role.OPERATOR), "http://127.0.0.1:9/h", settings)
        job_id = job.id
    published.clear()
    session = sessions()
    session.begin()
    record_event(session, job_id, "review_received", actor="system")
    session.rollback()
    with session.begin():
        record_event(session, job_id, "review_received", actor="system")
        record_event(session, job_id, "review_received", actor="system")
        ids = session.scalars(sa.select(WebhookDelivery.id).order_by(WebhookDelivery.id)).all()
    session.close()
    assert len(ids) == 2
    assert published == [(FAN_OUT_TASK, [[[i, None] for i in ids]])]


def test_fan_out_sends_only_what_claim_would_take(
    sessions: sessionmaker[Session],
    settings: Settings,
    committed: None,
    live_worker: Any,
    lost_kicks: None,
    published: list[tuple[str, Any]],
) -> None:
    """The sweep re-kicks every row still pending after the grace; with a long queue most of
    them are taken by their first message by the time the fan-out runs: no second task.
    (The commit's own kick is lost, else the live worker could take ``free`` first.)"""
    from gigco.tasks.webhooks import fan_out

    now = dt.datetime.now(dt.UTC)
    with sessions() as session, session.begin():
        job = factories.job(session)
        _endpoint(session, Principal(Role.OPERATOR), "http://127.0.0.1:9/h", settings)
        first = record_event(session, job.id, "review_received", actor="system", now=now)
        record_event(session, job.id, "review_received", actor="system", now=now)
        other = factories.job(session)
        record_event(session, other.id, "review_received", actor="system", now=now)
        rows = dict(
            session.execute(
                sa.select(WebhookDelivery.seq, WebhookDelivery.id).where(
                    WebhookDelivery.job_id == job.id
                )
            ).all()
        )
        taken = rows[first.seq]
        waiting = max(rows.values())
        free = session.scalar(
            sa.select(WebhookDelivery.id).where(WebhookDelivery.job_id == other.id)
        )
        assert webhooks.claim(session, taken, settings=settings, now=now) is not None
    later = now + dt.timedelta(minutes=5)
    published.clear()
    sent = fan_out([[taken, None], [waiting, None], [free, None], [taken, later.isoformat()]])
    assert sent == 2
    assert published == [(DELIVER_TASK, [free]), (DELIVER_TASK, [taken])]
    with sessions() as session:
        wait_for(
            lambda: session.get(WebhookDelivery, free, populate_existing=True).tries > 0,
            timeout=20,
            what="the live worker to send the fanned-out delivery",
        )


def test_recording_an_attempt_does_not_hold_up_an_events_outbox(
    sessions: sessionmaker[Session], settings: Settings, committed: None, lost_kicks: None
) -> None:
    """A delivery's record locks its endpoint row; the lifecycle's INSERT of deliveries to that
    endpoint (a foreign key: FOR KEY SHARE) must not wait for it (the API's lock_timeout is
    3 s, a 503)."""
    now = dt.datetime.now(dt.UTC)
    operator = Principal(Role.OPERATOR)
    with sessions() as session, session.begin():
        job = factories.job(session)
        endpoint_id = _endpoint(session, operator, "http://127.0.0.1:9/h", settings)
        delivery_id = webhooks.ping(session, operator, endpoint_id, now=now)
        job_id = job.id
    with sessions() as session, session.begin():
        claimed = webhooks.claim(session, delivery_id, settings=settings, now=now)
        assert claimed is not None
    answer = webhooks.Answer(now, 5, status=200)
    with sessions() as recording, recording.begin():
        webhooks.record_attempt(recording, claimed, answer, settings=settings, now=now)
        with sessions() as lifecycle, lifecycle.begin():
            lifecycle.execute(sa.text("SET LOCAL lock_timeout = '500ms'"))
            record_event(lifecycle, job_id, "review_received", actor="system")
            written = lifecycle.scalar(
                sa.select(sa.func.count()).where(WebhookDelivery.job_id == job_id)
            )
        assert written == 1
