"""The caller's notifications: their own only, newest first in pages, or as a feed."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.lifecycle.notify import notify_consumer
from tests.api.helpers import assert_error
from tests.harness.http import Api
from tests.harness.polling import wait_for


def test_a_consumer_reads_their_notifications_newest_first_in_pages(api: Api) -> None:
    consumer, other = api.consumer(), api.consumer()
    ids = []
    for title in ("Sink", "Bath", "Boiler"):
        ids.append(api.post_job(consumer, title=title)["id"])
        api.wait_status(ids[-1], "offered")
    h = consumer["headers"]

    first = api.client.get("/v1/notifications?page_size=2", headers=h)
    assert first.status_code == 200, first.json
    assert [(n["kind"], n["job_id"]) for n in first.json] == [("offer", ids[2]), ("offer", ids[1])]
    assert "Boiler" in first.json[0]["message"]
    assert first.json[0]["data"]["price_cents"] == 19800
    pages = json.loads(first.headers["X-Pagination"])
    assert (pages["total"], pages["total_pages"], pages["next_page"]) == (3, 2, 2)

    second = api.client.get("/v1/notifications?page_size=2&page=2", headers=h)
    assert [n["job_id"] for n in second.json] == [ids[0]]
    everything = api.client.get("/v1/notifications", headers=h).json
    assert [n["id"] for n in everything] == sorted((n["id"] for n in everything), reverse=True)

    assert api.client.get("/v1/notifications", headers=other["headers"]).json == []
    assert_error(api.client.get("/v1/notifications?page_size=101", headers=h), 422, "page_size")


def test_a_worker_is_told_of_an_opportunity(api: Api) -> None:
    consumer, worker = api.consumer(), api.worker()
    assert api.client.get("/v1/notifications", headers=worker["headers"]).json == []
    job_id = api.post_job(consumer, title="Leaky tap")["id"]
    api.wait_status(job_id, "offered")
    assert api.signal(job_id, "offer/accept", consumer).status_code == 200

    notes = wait_for(
        lambda: api.client.get("/v1/notifications", headers=worker["headers"]).json,
        what="the worker's opportunity notification",
    )
    assert [(n["kind"], n["job_id"]) for n in notes] == [("opportunity", job_id)]
    assert "Leaky tap" in notes[0]["message"]
    kinds = [
        n["kind"] for n in api.client.get("/v1/notifications", headers=consumer["headers"]).json
    ]
    assert "opportunity" not in kinds


def test_the_operator_has_no_notifications(api: Api) -> None:
    error = assert_error(api.client.get("/v1/notifications", headers=api.admin), 403)
    assert "consumer or worker" in error["message"]


def test_the_feed_reads_from_a_cursor_oldest_first_without_repeats(api: Api) -> None:
    consumer = api.consumer()
    h = consumer["headers"]
    ids = []
    for title in ("Sink", "Bath", "Boiler"):
        ids.append(api.post_job(consumer, title=title)["id"])
        api.wait_status(ids[-1], "offered")

    first = api.feed(h, limit=2, want=2)
    assert [n["job_id"] for n in first] == ids[:2]
    rest = api.feed(h, first[-1]["cursor"])
    assert [n["job_id"] for n in rest] == ids[2:]
    end = api.client.get(f"/v1/notifications/feed?after={rest[-1]['cursor']}", headers=h)
    assert end.status_code == 200 and end.json == []
    listed = api.client.get("/v1/notifications", headers=h).json
    assert [n["cursor"] for n in reversed(listed)] == [n["cursor"] for n in first + rest]
    assert api.client.get("/v1/notifications/feed", headers=api.consumer()["headers"]).json == []
    assert_error(api.client.get("/v1/notifications/feed?limit=501", headers=h), 422, "limit")


def test_the_feed_holds_back_a_later_notification_until_an_earlier_transaction_ends(
    api: Api, engine: sa.Engine
) -> None:
    consumer = api.consumer()
    h, factory = consumer["headers"], sessionmaker(engine)

    def note(session: Session, text: str) -> None:
        notify_consumer(session, consumer["id"], "test", text)
        session.flush()

    with factory() as slow:
        note(slow, "written first, committed last")  # a lower id, its transaction still open
        with factory.begin() as fast:
            note(fast, "written second, committed first")
        # An id cursor would hand out the second one now and then never the first.
        assert api.client.get("/v1/notifications/feed", headers=h).json == []
        slow.commit()
    feed = api.feed(h, want=2)
    assert {n["message"] for n in feed} == {
        "written first, committed last",
        "written second, committed first",
    }
    after = api.client.get(f"/v1/notifications/feed?after={feed[-1]['cursor']}", headers=h)
    assert after.json == []
