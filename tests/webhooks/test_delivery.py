"""Webhooks end to end: a real receiver on 127.0.0.1, the live worker and beat."""

from __future__ import annotations

from typing import Any

from tests.harness.http import Api
from tests.harness.journeys import closed_job
from tests.harness.polling import wait_for
from tests.harness.webhooks import Receiver, register, verified


def _messages(receiver: Receiver, path: str, secret: str, job_id: int) -> list[dict[str, Any]]:
    found = [verified(r, secret) for r in receiver.at(path) if 200 <= r.answered < 300]
    return [m for m in found if m["type"] != "ping" and m["data"]["job_id"] == job_id]


def test_a_whole_lifecycle_reaches_every_party_signed_and_in_order(
    api: Api, receiver: Receiver
) -> None:
    consumer, worker = api.consumer(), api.worker()
    hooks = {
        "consumer": register(api, consumer["headers"], receiver.url("/consumer")),
        "worker": register(api, worker["headers"], receiver.url("/worker")),
        "operator": register(api, api.admin, receiver.url("/operator")),
    }
    assert all(h["secret"].startswith("whsec_") for h in hooks.values())
    job_id, _, _ = closed_job(api, consumer, worker)
    history = api.events(job_id)
    assert history[-1]["type"] == "closed"

    for party in ("consumer", "operator"):
        got = wait_for(
            lambda p=party: (
                len(m := _messages(receiver, f"/{p}", hooks[p]["secret"], job_id)) >= len(history)
                and m
            ),
            timeout=20,
            what=f"the {party}'s endpoint to get the whole history",
        )
        assert [m["data"]["seq"] for m in got] == [e["seq"] for e in history]
        assert [m["type"] for m in got] == [f"job.{e['type']}" for e in history]
    consumer_view = api.client.get(f"/v1/jobs/{job_id}/events", headers=consumer["headers"]).json
    got = _messages(receiver, "/consumer", hooks["consumer"]["secret"], job_id)
    assert [m["data"]["event"] for m in got] == consumer_view
    assert got[-1]["data"]["job"] == api.job(job_id, consumer["headers"])

    # The worker sees the job from its opportunity on; every message it gets is in seq order.
    got = wait_for(
        lambda: (
            (m := _messages(receiver, "/worker", hooks["worker"]["secret"], job_id))
            and m[-1]["type"] == "job.closed"
            and m
        ),
        timeout=20,
        what="the worker's endpoint to get the job closed",
    )
    seqs = [m["data"]["seq"] for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [m["type"] for m in got][:2] == ["job.opportunity_offered", "job.worker_assigned"]
    for m in got:
        assert m["data"]["job"]["id"] == job_id
        assert m["data"]["event"]["seq"] == m["data"]["seq"]


def test_failed_tries_are_retried_with_the_same_id_and_order_holds(
    api: Api, receiver: Receiver
) -> None:
    receiver.answer = lambda path, headers, tries: 500 if tries < 2 else 200
    consumer = api.consumer()
    hook = register(api, consumer["headers"], receiver.url("/flaky"))
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    history = api.events(job_id)
    got = wait_for(
        lambda: (
            len(m := _messages(receiver, "/flaky", hook["secret"], job_id)) >= len(history) and m
        ),
        timeout=20,
        what="every message delivered after two failures each",
    )
    assert [m["data"]["seq"] for m in got] == [e["seq"] for e in history]
    for received in receiver.at("/flaky", 200):
        tries = [
            r
            for r in receiver.at("/flaky")
            if r.headers["webhook-id"] == received.headers["webhook-id"]
        ]
        assert [r.answered for r in tries] == [500, 500, 200]
        assert len({r.body for r in tries}) == 1
    # Order: no message was tried before the earlier one of its job was delivered.
    arrivals = [r.json["data"]["seq"] for r in receiver.at("/flaky")]
    assert arrivals == sorted(arrivals)
    # Those of the history read above: the offer (5 s in tests) may expire since, and that
    # later event's delivery may be between its tries.
    seqs = {e["seq"] for e in history}

    def recorded() -> list[dict]:
        found = api.client.get(
            f"/v1/webhook-endpoints/{hook['id']}/deliveries", headers=consumer["headers"]
        ).json
        return [d for d in found if d["seq"] in seqs]

    # The receiver has the last 200 a moment before the worker records it.
    deliveries = wait_for(
        lambda: (d := recorded()) and all(x["status"] == "delivered" for x in d) and d,
        timeout=10,
        what="every delivery recorded as delivered",
    )
    assert len(deliveries) == len(history)
    assert all([a["response_status"] for a in d["attempts"]] == [500, 500, 200] for d in deliveries)


def test_410_disables_the_endpoint_and_tells_its_owner(api: Api, receiver: Receiver) -> None:
    receiver.answer = lambda path, headers, tries: 410
    consumer = api.consumer()
    hook = register(api, consumer["headers"], receiver.url("/gone"))
    r = api.client.post(f"/v1/webhook-endpoints/{hook['id']}/ping", headers=consumer["headers"])
    assert r.status_code == 202, r.json
    endpoint = wait_for(
        lambda: (
            not (
                e := api.client.get(
                    f"/v1/webhook-endpoints/{hook['id']}", headers=consumer["headers"]
                ).json
            )["enabled"]
            and e
        ),
        what="the endpoint to be disabled",
    )
    assert "410" in endpoint["disabled_reason"]
    assert len(receiver.at("/gone")) == 1  # not retried
    notes = api.client.get("/v1/notifications", headers=consumer["headers"]).json
    assert any(n["kind"] == "webhook_disabled" for n in notes)
    # A disabled endpoint gets nothing more.
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    assert len(receiver.at("/gone")) == 1


def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
    api: Api, receiver: Receiver
) -> None:
    consumer = api.consumer()
    hook = register(api, consumer["headers"], receiver.url("/rotated"))
    r = api.client.post(
        f"/v1/webhook-endpoints/{hook['id']}/rotate-secret", headers=consumer["headers"]
    )
    assert r.status_code == 200, r.json
    new_secret = r.json["secret"]
    assert new_secret != hook["secret"] and new_secret.startswith("whsec_")
    r = api.client.post(f"/v1/webhook-endpoints/{hook['id']}/ping", headers=consumer["headers"])
    assert r.status_code == 202
    (ping,) = wait_for(lambda: receiver.at("/rotated"), what="the ping")
    assert verified(ping, new_secret)["type"] == "ping"
    assert verified(ping, hook["secret"])["data"] == {"endpoint_id": hook["id"]}
    assert len(ping.headers["webhook-signature"].split(" ")) == 2
