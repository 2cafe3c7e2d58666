"""SIGKILL of the worker while it waits on a webhook receiver: the outbox row is sent again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from gigco.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from tests.harness.bodies import consumer_body, job_body
from tests.harness.polling import wait_for
from tests.harness.webhooks import receiving, verified
from tests.resilience.stack import Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS, TIMERS

pytestmark = pytest.mark.timeout(180)


def _deliveries(stack: Stack, endpoint_id: int) -> list[tuple[int, int, str, str, int, int]]:
    """(id, seq, msg_id, status, tries, attempts) of the endpoint's deliveries, by seq."""
    with stack.engine.connect() as conn:
        attempts = (
            sa.select(sa.func.count())
            .where(WebhookAttempt.delivery_id == WebhookDelivery.id)
            .scalar_subquery()
        )
        rows = conn.execute(
            sa.select(
                WebhookDelivery.id,
                WebhookDelivery.seq,
                WebhookDelivery.msg_id,
                WebhookDelivery.status,
                WebhookDelivery.tries,
                attempts,
            )
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.seq)
        )
        return [tuple(r) for r in rows]


def test_a_delivery_in_flight_when_the_worker_is_killed_is_sent_again(
    stack: Stack, report: Callable[[str], None]
) -> None:
    with receiving() as receiver:
        arrived, killed, lock = threading.Event(), threading.Event(), threading.Lock()

        def answer(path: str, headers: dict[str, str], tries: int) -> int:
            with lock:
                first = not arrived.is_set()
                arrived.set()
            if first:  # hold the worker's request open until the worker is dead
                killed.wait(timeout=60)
                return 503  # nobody reads it
            return 204

        receiver.answer = answer
        client = stack.client
        consumer = client.call("POST", "/v1/consumers", body=consumer_body()).body
        hook = client.call(
            "POST",
            "/v1/webhook-endpoints",
            token=consumer["token"],
            body={"url": receiver.url("/crash")},
        ).body
        posted = client.call("POST", "/v1/jobs", token=consumer["token"], body=job_body())
        assert posted.status == 201, posted
        job_id = posted.body["id"]

        assert arrived.wait(timeout=30), "the first message never reached the receiver"
        fault_at = stack.topology.kill("worker")
        killed.set()
        # The worker died between sending and recording: the row is still ``sending``.
        first = _deliveries(stack, hook["id"])[0]
        assert first[3:] == (DeliveryStatus.SENDING, 0, 0), first

        stack.topology.start_worker("worker-2")
        healthy_at = stack.topology.wait_worker_ready("worker-2")
        # The job's own steps recover too; once it waits for the consumer, its history is whole.
        wait_for(
            lambda: (
                client.call("GET", f"/v1/jobs/{job_id}", token=consumer["token"]).body["status"]
                == "offered"
            ),
            timeout=60,
            what="the job to be offered",
        )
        events = client.call("GET", f"/v1/jobs/{job_id}/events", token=consumer["token"]).body
        rows = wait_for(
            lambda: (
                len(d := _deliveries(stack, hook["id"])) >= len(events)
                and all(r[3] == DeliveryStatus.DELIVERED for r in d)
                and d
            ),
            timeout=60,
            what="every message of the job delivered after the crash",
        )
        redelivered_at = time.time()

    # The row that was in flight: sent again under the same webhook-id, once recorded.
    assert rows[0][:3] == first[:3] and rows[0][4:] == (1, 1)
    tries = [r for r in receiver.at("/crash") if r.headers["webhook-id"] == first[2]]
    assert len(tries) == 2 and tries[0].body == tries[1].body
    assert tries[1].answered == 204
    assert verified(tries[1], hook["secret"])["data"]["seq"] == first[1]
    # Every message delivered exactly once more, in seq order; none skipped.
    delivered = receiver.at("/crash", 204)
    assert [r.headers["webhook-id"] for r in delivered] == [r[2] for r in rows]
    assert [r.json["data"]["seq"] for r in delivered] == [e["seq"] for e in events]
    lease = 2 * float(TIMERS["GIGCO_WEBHOOK_TIMEOUT_SECONDS"]) + 5
    took = redelivered_at - fault_at
    report(
        f"{len(rows)} messages; worker killed with message seq {first[1]} in flight; new "
        f"worker ready after {healthy_at - fault_at:.1f}s; all delivered {took:.1f}s after "
        f"the kill (lease {lease:.0f}s + grace {GRACE_SECONDS:.0f}s + sweep {SWEEP_SECONDS:.0f}s)"
    )
    assert took <= lease + GRACE_SECONDS + SWEEP_SECONDS + SLACK_SECONDS
