"""The feed is not frozen by a transaction left open in another database (never held), nor by
another role's in this one, whose age the app's role cannot read (held at most the hold)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from gigco.config import Settings
from gigco.db import make_engine
from gigco.lifecycle.notify import notify_consumer
from tests.harness.database import url_of
from tests.harness.env import ADMIN_TOKEN, server_url
from tests.harness.http import Api

HOLD_SECONDS = 2.0  # GIGCO_FEED_HOLD_SECONDS of this file's app
SLACK_SECONDS = 1.5  # a poll's round trip on a loaded machine; never part of the bound


@pytest.fixture
def held_api(settings: Settings, api: Api) -> Api:
    """The API with a short feed hold, so the bound can be watched in seconds."""
    from gigco.web import create_app

    return Api(
        create_app(settings.replace(feed_hold_seconds=HOLD_SECONDS)).test_client(), ADMIN_TOKEN
    )


def test_an_open_transaction_in_another_database_does_not_hold_the_feed(
    api: Api, engine: sa.Engine
) -> None:
    consumer = api.consumer()
    h, factory = consumer["headers"], sessionmaker(engine)
    # Another role's (the server's superuser) in the server's postgres database: every role
    # reads each backend's database and transaction id in pg_stat_activity.
    other = make_engine(server_url())
    with other.connect() as idle:
        idle.execute(sa.text("SELECT txid_current()"))  # BEGIN; an xid, left open
        seen: list[str] = []
        cursor = "0-0"
        for text in ("first", "second", "third"):
            with factory.begin() as s:
                notify_consumer(s, consumer["id"], "test", text)
            page = api.feed(h, cursor)  # within 5 s, with the other transaction still open
            seen += [n["message"] for n in page]
            cursor = page[-1]["cursor"]
        assert seen == ["first", "second", "third"]  # delivered, no skips, no repeats
        assert api.client.get(f"/v1/notifications/feed?after={cursor}", headers=h).json == []
        idle.rollback()
    other.dispose()


def test_another_roles_open_transaction_here_holds_a_notification_back_at_most_the_hold(
    held_api: Api, engine: sa.Engine
) -> None:
    api = held_api
    consumer = api.consumer()
    h, factory = consumer["headers"], sessionmaker(engine)
    assert engine.url.database is not None
    # The server's superuser, in this run's database: another role than the app's.
    other = make_engine(url_of(server_url(), engine.url.database))
    with other.connect() as idle:
        idle.execute(sa.text("SELECT txid_current()"))  # BEGIN; an xid, left open
        pid = idle.scalar(sa.text("SELECT pg_backend_pid()"))
        with engine.connect() as ours:  # the premise: our role cannot tell how old it is
            seen_by_us = ours.execute(
                sa.text("SELECT backend_xid, xact_start FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            ).one()
        assert seen_by_us.backend_xid is not None and seen_by_us.xact_start is None
        seen: list[str] = []
        cursor = "0-0"
        for text in ("first", "second", "third"):
            with factory.begin() as s:
                notify_consumer(s, consumer["id"], "test", text)
            written = time.monotonic()
            page = api.feed(h, cursor)  # polled; fails after 5 s
            held = time.monotonic() - written
            assert held <= HOLD_SECONDS + SLACK_SECONDS, (text, held)
            seen += [n["message"] for n in page]
            cursor = page[-1]["cursor"]
        assert seen == ["first", "second", "third"]  # delivered, no skips, no repeats
        assert api.client.get(f"/v1/notifications/feed?after={cursor}", headers=h).json == []
        idle.rollback()
    other.dispose()
