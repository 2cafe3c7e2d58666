"""A whole lifecycle over HTTP with the live worker: draft to closed."""

from tests.brokers import both_brokers
from tests.harness.http import Api
from tests.harness.polling import wait_for


@both_brokers
def test_job_runs_from_draft_to_closed_with_the_exact_history(api: Api) -> None:
    consumer = api.consumer()
    worker = api.worker()
    job_id = api.post_job(consumer, estimated_hours=2)["id"]
    api.wait_status(job_id, "offered")

    assert api.signal(job_id, "offer/accept", consumer).status_code == 200
    opportunity = wait_for(
        lambda: api.client.get("/v1/opportunities", headers=worker["headers"]).json,
        what="an opportunity for the worker",
    )[0]
    assert opportunity["job_id"] == job_id
    assert opportunity["job"]["earnings_cents"] == 18000

    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    assert api.signal(job_id, "start", worker).status_code == 200
    assert api.signal(job_id, "complete", worker).status_code == 200
    api.wait_status(job_id, "review_pending")

    payment = api.client.get(f"/v1/jobs/{job_id}/payment", headers=consumer["headers"]).json
    assert payment["status"] == "succeeded"
    assert (payment["amount_cents"], payment["fee_cents"], payment["worker_earnings_cents"]) == (
        19800,
        1800,
        18000,
    )
    assert [a["outcome"] for a in payment["attempts"]] == ["succeeded"]
    earned = api.client.get(f"/v1/jobs/{job_id}/payment", headers=worker["headers"]).json
    assert earned["worker_earnings_cents"] == 18000
    assert not {"amount_cents", "fee_cents", "idempotency_key"} & set(earned)

    r = api.client.post(
        f"/v1/jobs/{job_id}/reviews",
        json={"rating": 5, "comment": "Great"},
        headers=consumer["headers"],
    )
    assert r.status_code == 201, r.json
    r = api.client.post(f"/v1/jobs/{job_id}/reviews", json={"rating": 4}, headers=worker["headers"])
    assert r.status_code == 201, r.json
    closed = api.wait_status(job_id, "closed")
    assert closed["worker_id"] == worker["id"]
    reviews = api.client.get(f"/v1/jobs/{job_id}/reviews", headers=worker["headers"]).json
    assert [(r["author_role"], r["rating"], "author_id" in r) for r in reviews] == [
        ("consumer", 5, False),
        ("worker", 4, False),
    ]

    history = [
        (e["seq"], e["type"], e["from_status"], e["to_status"], e["actor"])
        for e in api.events(job_id)
    ]
    c, w = f"consumer:{consumer['id']}", f"worker:{worker['id']}"
    assert history == [
        (1, "created", None, "draft", c),
        (2, "priced", "draft", "priced", "system"),
        (3, "offered", "priced", "offered", "system"),
        (4, "accepted", "offered", "accepted", c),
        (5, "matching_round_started", None, None, "system"),
        (6, "opportunity_offered", None, None, "system"),
        (7, "worker_assigned", "accepted", "worker_assigned", w),
        (8, "scheduled", "worker_assigned", "scheduled", "system"),
        (9, "in_progress", "scheduled", "in_progress", w),
        (10, "completed", "in_progress", "completed", w),
        (11, "paid", "completed", "paid", "system"),
        (12, "review_pending", "paid", "review_pending", "system"),
        (13, "review_received", None, None, c),
        (14, "review_received", None, None, w),
        (15, "closed", "review_pending", "closed", "system"),
    ]
    profile = api.client.get(f"/v1/workers/{worker['id']}", headers=consumer["headers"]).json
    assert (profile["rating"], profile["review_count"], profile["completed_jobs"]) == (5.0, 1, 1)
    kinds = [
        n["kind"] for n in api.client.get("/v1/notifications", headers=consumer["headers"]).json
    ]
    assert kinds == [
        "closure",
        "review_request",
        "payment_receipt",
        "schedule",
        "assignment",
        "offer",
    ]
