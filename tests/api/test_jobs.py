"""Posting jobs (validation, Idempotency-Key), listing them, reading one and its history."""

from __future__ import annotations

import datetime as dt
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests.api.helpers import RowCounts, assert_error, send_json
from tests.harness.bodies import MISSING, job_body
from tests.harness.http import Api
from tests.harness.polling import wait_for


def _past() -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()


BAD_JOBS = [
    ("lat-too-big", {"location": {"lat": 90.01, "lng": 13.4}}, "location.lat"),
    ("lat-too-small", {"location": {"lat": -91, "lng": 13.4}}, "location.lat"),
    ("lng-too-big", {"location": {"lat": 52.5, "lng": 180.5}}, "location.lng"),
    ("lat-text", {"location": {"lat": "north", "lng": 13.4}}, "location.lat"),
    ("lat-nan", {"location": {"lat": float("nan"), "lng": 13.4}}, "location.lat"),
    ("lng-missing", {"location": {"lat": 52.5}}, "location.lng"),
    ("location-extra", {"location": {"lat": 52.5, "lng": 13.4, "alt": 30}}, "location.alt"),
    ("location-text", {"location": "Berlin"}, "location"),
    ("location-missing", {"location": MISSING}, "location"),
    ("hours-below-range", {"estimated_hours": 0.25}, "estimated_hours"),
    ("hours-above-range", {"estimated_hours": 12.25}, "estimated_hours"),
    ("hours-zero", {"estimated_hours": 0}, "estimated_hours"),
    ("hours-negative", {"estimated_hours": -2}, "estimated_hours"),
    ("hours-not-quarter", {"estimated_hours": 1.1}, "estimated_hours"),
    ("hours-not-quarter-2", {"estimated_hours": 2.3}, "estimated_hours"),
    ("hours-infinite", {"estimated_hours": float("inf")}, "estimated_hours"),
    ("hours-bool", {"estimated_hours": True}, "estimated_hours"),
    ("start-in-past", {"scheduled_start": _past()}, "scheduled_start"),
    ("start-naive", {"scheduled_start": "2030-01-01T10:00:00"}, "scheduled_start"),
    ("start-not-a-time", {"scheduled_start": "next tuesday"}, "scheduled_start"),
    ("start-missing", {"scheduled_start": MISSING}, "scheduled_start"),
    ("unknown-category", {"category": "astrology"}, "category"),
    ("empty-category", {"category": ""}, "category"),
    ("title-empty", {"title": ""}, "title"),
    ("title-too-long", {"title": "t" * 201}, "title"),
    ("title-missing", {"title": MISSING}, "title"),
    ("title-not-text", {"title": 42}, "title"),
    ("description-too-long", {"description": "d" * 5001}, "description"),
    ("unknown-field", {"colour": "red"}, "colour"),
    ("server-field-price", {"price_cents": 1}, "price_cents"),
    ("server-field-status", {"status": "paid"}, "status"),
]


@pytest.mark.parametrize(
    ("change", "field"), [c[1:] for c in BAD_JOBS], ids=[c[0] for c in BAD_JOBS]
)
def test_a_bad_job_field_is_refused_by_name_and_nothing_is_written(
    api: Api, row_counts: RowCounts, change: dict[str, Any], field: str
) -> None:
    consumer = api.consumer()
    before = row_counts()
    r = send_json(api.client, "POST", "/v1/jobs", job_body(**change), consumer["headers"])
    assert_error(r, 422, field)
    assert row_counts() == before


def test_an_unknown_category_is_refused_naming_the_valid_ones(api: Api) -> None:
    consumer = api.consumer()
    r = send_json(
        api.client, "POST", "/v1/jobs", job_body(category="astrology"), consumer["headers"]
    )
    valid = ", ".join(sorted(c["name"] for c in api.client.get("/v1/categories").json))
    assert "plumbing" in valid
    body = assert_error(r, 422, "category")
    assert body["errors"]["category"] == [f"Unknown category: astrology; choose one of: {valid}."]
    assert body["message"] == f"Unknown category; the categories are: {valid}."


def test_the_field_limits_are_inclusive(api: Api) -> None:
    consumer = api.consumer()
    for change in (
        {"title": "t" * 200, "description": "d" * 5000, "estimated_hours": 12},
        {"title": "t", "description": None, "estimated_hours": 0.5},
        {"description": MISSING, "estimated_hours": 2.75, "category": "gardening"},
        {"location": {"lat": -90, "lng": 180}, "scheduled_start": "2031-05-01T09:30:00+02:00"},
    ):
        r = api.client.post("/v1/jobs", json=job_body(**change), headers=consumer["headers"])
        assert r.status_code == 201, (change, r.json)
        assert r.json["status"] == "draft"


def test_a_posted_job_has_every_field_of_the_resource(api: Api) -> None:
    consumer = api.consumer()
    start = "2031-05-01T09:30:00+02:00"
    r = api.client.post(
        "/v1/jobs",
        json=job_body(scheduled_start=start, estimated_hours=1.5),
        headers=consumer["headers"],
    )
    assert r.status_code == 201, r.json
    job = r.json
    assert {k: job[k] for k in ("consumer_id", "worker_id", "title", "description")} == {
        "consumer_id": consumer["id"],
        "worker_id": None,
        "title": "Fix the sink",
        "description": "It drips.",
    }
    assert (job["category"], job["location"]) == ("plumbing", {"lat": 52.53, "lng": 13.41})
    assert dt.datetime.fromisoformat(job["scheduled_start"]) == dt.datetime.fromisoformat(start)
    assert job["scheduled_start"] == "2031-05-01T07:30:00+00:00"
    assert api.job(job["id"], consumer["headers"])["scheduled_start"] == job["scheduled_start"]
    assert (job["estimated_hours"], job["status"], job["currency"]) == (1.5, "draft", "USD")
    for field in ("subtotal_cents", "fee_cents", "price_cents", "offer_expires_at"):
        assert job[field] is None
    assert (job["review_deadline"], job["match_round"]) == (None, 0)
    assert dt.datetime.fromisoformat(job["created_at"]).tzinfo is not None
    offered = api.wait_status(job["id"], "offered")
    # plumbing is 9000 ¢/h: 1.5 h → 13500, fee 10 % → 1350
    assert (offered["subtotal_cents"], offered["fee_cents"], offered["price_cents"]) == (
        13500,
        1350,
        14850,
    )


@pytest.mark.parametrize("who", ["worker", "operator"])
def test_only_a_consumer_may_post_a_job(api: Api, row_counts: RowCounts, who: str) -> None:
    headers = api.worker()["headers"] if who == "worker" else api.admin
    before = row_counts()
    assert_error(api.client.post("/v1/jobs", json=job_body(), headers=headers), 403)
    assert row_counts() == before


def _post(api: Api, headers: dict[str, str], key: str, body: dict[str, Any]) -> TestResponse:
    return api.client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": key})


def test_a_repeated_idempotency_key_replays_the_first_response(
    api: Api, row_counts: RowCounts
) -> None:
    consumer = api.consumer()
    body = job_body()
    first = _post(api, consumer["headers"], "first-job", body)
    assert first.status_code == 201, first.json
    assert "Idempotent-Replayed" not in first.headers
    counts = row_counts()
    assert (counts["jobs"], counts["idempotency_keys"]) == (1, 1)

    reordered = dict(reversed(list(body.items())))
    again = _post(api, consumer["headers"], "first-job", reordered)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    after = row_counts()
    assert (after["jobs"], after["idempotency_keys"]) == (1, 1)


def test_a_reused_idempotency_key_with_another_body_is_a_conflict(
    api: Api, row_counts: RowCounts
) -> None:
    consumer = api.consumer()
    assert _post(api, consumer["headers"], "k-1", job_body()).status_code == 201
    before = row_counts()
    r = _post(api, consumer["headers"], "k-1", job_body(title="Fix the bath"))
    error = assert_error(r, 409)
    assert "Idempotency-Key" in error["message"]
    after = row_counts()
    assert (after["jobs"], after["idempotency_keys"]) == (
        before["jobs"],
        before["idempotency_keys"],
    )


def test_idempotency_keys_belong_to_one_consumer(api: Api, row_counts: RowCounts) -> None:
    ann, bob = api.consumer(), api.consumer()
    body = job_body()
    a = _post(api, ann["headers"], "my-key", body)
    b = _post(api, bob["headers"], "my-key", body)
    assert (a.status_code, b.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in b.headers
    assert (a.json["consumer_id"], b.json["consumer_id"]) == (ann["id"], bob["id"])
    assert row_counts()["jobs"] == 2


@pytest.mark.parametrize("key", ["", "k" * 256], ids=["empty", "too-long"])
def test_a_bad_idempotency_key_is_refused(api: Api, row_counts: RowCounts, key: str) -> None:
    consumer = api.consumer()
    before = row_counts()
    assert_error(_post(api, consumer["headers"], key, job_body()), 422, "Idempotency-Key")
    assert row_counts() == before


def test_concurrent_repeats_of_one_idempotency_key_create_one_job(
    api: Api, row_counts: RowCounts
) -> None:
    consumer = api.consumer()
    body = job_body()
    app = api.client.application
    n = 8
    barrier = threading.Barrier(n)

    def post_once(_: int) -> tuple[int, int, bool]:
        client = app.test_client()
        barrier.wait(timeout=10)
        r = client.post(
            "/v1/jobs", json=body, headers={**consumer["headers"], "Idempotency-Key": "race"}
        )
        return r.status_code, r.json["id"], "Idempotent-Replayed" in r.headers

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(post_once, range(n)))

    counts = row_counts()
    assert (counts["jobs"], counts["idempotency_keys"]) == (1, 1)
    ((job_id,),) = {(i,) for _, i, _ in results}
    assert {status for status, _, _ in results} == {201}
    assert sum(not replayed for _, _, replayed in results) == 1
    api.wait_status(job_id, "offered")
    assert [e["type"] for e in api.events(job_id)] == ["created", "priced", "offered"]


def _ids(r: TestResponse) -> list[int]:
    assert r.status_code == 200, r.json
    return [j["id"] for j in r.json]


def test_a_consumer_lists_and_reads_only_their_own_jobs(api: Api) -> None:
    ann, bob = api.consumer(), api.consumer()
    a1, a2 = api.post_job(ann)["id"], api.post_job(ann)["id"]
    b1 = api.post_job(bob)["id"]

    assert _ids(api.client.get("/v1/jobs", headers=ann["headers"])) == [a2, a1]
    assert _ids(api.client.get("/v1/jobs", headers=bob["headers"])) == [b1]
    assert _ids(api.client.get("/v1/jobs", headers=api.admin)) == [b1, a2, a1]

    assert api.client.get(f"/v1/jobs/{a1}", headers=ann["headers"]).json["id"] == a1
    hidden = assert_error(api.client.get(f"/v1/jobs/{a1}", headers=bob["headers"]), 404)
    absent = assert_error(api.client.get("/v1/jobs/999999", headers=bob["headers"]), 404)
    assert hidden["message"] == f"Job {a1} not found."
    assert absent["message"] == "Job 999999 not found."
    assert_error(api.client.get(f"/v1/jobs/{a1}/events", headers=bob["headers"]), 404)


def test_a_worker_sees_a_job_only_while_holding_its_opportunity_or_assigned(api: Api) -> None:
    consumer = api.consumer()
    taker, passer = api.worker(), api.worker()
    bystander = api.worker(skills=["gardening"])
    api.post_job(consumer, category="cleaning")  # nobody near cleans: never offered to anyone
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    for w in (taker, passer, bystander):
        assert _ids(api.client.get("/v1/jobs", headers=w["headers"])) == []
    assert api.signal(job_id, "offer/accept", consumer).status_code == 200

    def holder() -> dict[str, Any] | None:
        for w in (taker, passer):
            if api.client.get("/v1/opportunities", headers=w["headers"]).json:
                return w
        return None

    first = wait_for(holder, what="an opportunity for a worker")
    second = passer if first is taker else taker
    assert _ids(api.client.get("/v1/jobs", headers=first["headers"])) == [job_id]
    assert api.client.get(f"/v1/jobs/{job_id}", headers=first["headers"]).status_code == 200
    assert _ids(api.client.get("/v1/jobs", headers=second["headers"])) == []
    assert _ids(api.client.get("/v1/jobs", headers=bystander["headers"])) == []
    assert_error(api.client.get(f"/v1/jobs/{job_id}", headers=bystander["headers"]), 404)

    assert api.signal(job_id, "opportunity/decline", first).status_code == 200
    assert_error(api.client.get(f"/v1/jobs/{job_id}", headers=first["headers"]), 404)
    wait_for(
        lambda: api.client.get("/v1/opportunities", headers=second["headers"]).json,
        what="the opportunity to pass to the next worker",
    )
    assert api.signal(job_id, "opportunity/accept", second).status_code == 200
    assigned = api.client.get("/v1/jobs", headers=second["headers"]).json
    assert [(j["id"], j["worker_id"]) for j in assigned] == [(job_id, second["id"])]
    assert _ids(api.client.get("/v1/jobs", headers=first["headers"])) == []


def test_jobs_filter_by_status(api: Api) -> None:
    consumer = api.consumer()
    ids = [api.post_job(consumer)["id"] for _ in range(3)]
    for job_id in ids:
        api.wait_status(job_id, "offered")
    assert api.signal(ids[0], "offer/reject", consumer).status_code == 200
    assert api.signal(ids[1], "cancel", consumer).status_code == 200

    def listed(status: str) -> list[int]:
        return _ids(api.client.get(f"/v1/jobs?status={status}", headers=consumer["headers"]))

    assert listed("rejected") == [ids[0]]
    assert listed("cancelled") == [ids[1]]
    assert listed("closed") == []
    r = api.client.get("/v1/jobs?status=finished", headers=consumer["headers"])
    assert "rejected" in assert_error(r, 422, "status")["errors"]["status"][0]


def test_jobs_are_paginated_newest_first(api: Api) -> None:
    consumer = api.consumer()
    ids = [api.post_job(consumer)["id"] for _ in range(5)]
    h = consumer["headers"]

    first = api.client.get("/v1/jobs?page_size=2", headers=h)
    assert _ids(first) == [ids[4], ids[3]]
    assert json.loads(first.headers["X-Pagination"]) == {
        "total": 5,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 1,
        "next_page": 2,
    }
    last = api.client.get("/v1/jobs?page_size=2&page=3", headers=h)
    assert _ids(last) == [ids[0]]
    assert json.loads(last.headers["X-Pagination"])["previous_page"] == 2
    assert _ids(api.client.get("/v1/jobs", headers=h)) == ids[::-1]
    assert _ids(api.client.get("/v1/jobs?page_size=100", headers=h)) == ids[::-1]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=101", "page_size"),
        ("page_size=0", "page_size"),
        ("page=0", "page"),
        ("page=two", "page"),
    ],
)
def test_bad_paging_is_refused_by_name(api: Api, query: str, field: str) -> None:
    consumer = api.consumer()
    assert_error(api.client.get(f"/v1/jobs?{query}", headers=consumer["headers"]), 422, field)


def test_a_job_history_is_complete_and_oldest_first(api: Api) -> None:
    consumer = api.consumer()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    assert api.signal(job_id, "cancel", consumer).status_code == 200

    r = api.client.get(f"/v1/jobs/{job_id}/events", headers=consumer["headers"])
    assert r.status_code == 200, r.json
    c = f"consumer:{consumer['id']}"
    assert [
        (e["seq"], e["type"], e["from_status"], e["to_status"], e["actor"]) for e in r.json
    ] == [
        (1, "created", None, "draft", c),
        (2, "priced", "draft", "priced", "system"),
        (3, "offered", "priced", "offered", "system"),
        (4, "cancelled", "offered", "cancelled", c),
    ]
    times = [dt.datetime.fromisoformat(e["created_at"]) for e in r.json]
    assert times == sorted(times)
    assert r.json[0]["data"] == {"category": "plumbing", "estimated_hours": 2.0}
    assert_error(api.client.get("/v1/jobs/999999/events", headers=consumer["headers"]), 404)
