"""The feed is not frozen by a transaction left open in another database on the server."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from gigco.db import make_engine
from gigco.lifecycle.notify import notify_consumer
from tests.harness.env import server_url
from tests.harness.http import Api


def test_an_open_transaction_in_another_database_does_not_hold_the_feed(
    api: Api, engine: sa.Engine
) -> None:
    consumer = api.consumer()
    h, factory = consumer["headers"], sessionmaker(engine)
    other = make_engine(server_url())  # the server's postgres database
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
