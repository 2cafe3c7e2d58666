"""Test clocks over HTTP, on a stack of their own with GIGCO_TEST_CLOCKS=1: a job on a clock
expires, matches, retries payment and closes only when its clock is advanced, each deadline
at its own time and in due order, while a job beside it on real time is untouched."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import Answer, Client
from tests.harness.polling import wait_for
from tests.harness.private_stack import private_stack

OFFER_TTL = 2  # real time: a real job's offer lapses while the test watches
OPPORTUNITY_TTL = 900
REVIEW_WINDOW = 7 * 86400
RETRY_BASE = 60
ATTEMPTS = 3
ENV = {
    "GIGCO_TEST_CLOCKS": "1",
    "GIGCO_OFFER_TTL_SECONDS": str(OFFER_TTL),
    "GIGCO_OPPORTUNITY_TTL_SECONDS": str(OPPORTUNITY_TTL),
    "GIGCO_REVIEW_WINDOW_SECONDS": str(REVIEW_WINDOW),
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": str(RETRY_BASE),
    "GIGCO_PAYMENT_MAX_ATTEMPTS": str(ATTEMPTS),
}


@pytest.fixture(scope="module")
def stack_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the stack's processes log."""
    return tmp_path_factory.mktemp("clocks")


@pytest.fixture(scope="module")
def stack(stack_logs: Path) -> Iterator[Client]:
    """GigCo with test clocks on, on a database and broker of its own."""
    with private_stack(stack_logs, ENV) as client:
        yield client


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _ok(answer: Answer, status: int = 200) -> Any:
    assert answer.status == status, answer
    return answer.body


class Party:
    """A signed-up consumer or worker talking to the stack."""

    def __init__(self, client: Client, kind: str, **body: Any):
        make = consumer_body if kind == "consumers" else worker_body
        self.client = client
        self.token = _ok(client.call("POST", f"/v1/{kind}", body=make(**body)), 201)["token"]

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        return self.client.call(method, path, token=self.token, body=body)

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(_ok(self.call("GET", f"/v1/jobs/{job_id}")))

    def events(self, job_id: int) -> list[dict[str, Any]]:
        return list(_ok(self.call("GET", f"/v1/jobs/{job_id}/events")))

    def wait(self, job_id: int, status: str) -> dict[str, Any]:
        def there() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] == status else None

        return wait_for(there, timeout=20, every=0.05, what=f"job {job_id} {status}")

    def post_job(self, clock_id: int | None, days_ahead: float = 2) -> int:
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=days_ahead)
        body = job_body(start=start) | ({"test_clock": clock_id} if clock_id else {})
        return int(_ok(self.call("POST", "/v1/jobs", body), 201)["id"])


def _event(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in events if e["type"] == kind)


def test_a_clocks_jobs_run_only_when_it_is_advanced_in_due_order(stack: Client) -> None:
    consumer = Party(stack, "consumers")
    declined = Party(stack, "consumers", payment_method="pm_card_chargeDeclined")
    worker = Party(stack, "workers")
    # The clock stands two days in the past: every deadline of its jobs is long past on
    # real time, so a real sweep that looked at them would fire them at once.
    t0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(microsecond=0)
    made = _ok(consumer.call("POST", "/v1/test_clocks", {"frozen_time": t0.isoformat()}), 201)
    assert made["status"] == "ready" and _at(made["frozen_time"]) == t0
    clock_id = made["id"]
    _ok(declined.call("POST", "/v1/test_clocks", {"frozen_time": t0.isoformat()}), 201)
    paying_clock = _ok(declined.call("GET", "/v1/test_clocks"))[0]["id"]

    lapsing = consumer.post_job(clock_id)  # its offer is left to lapse
    closing = consumer.post_job(clock_id)  # taken to review_pending, closed by the window
    unmatched = consumer.post_job(clock_id, days_ahead=4)  # its worker never answers
    failing = declined.post_job(paying_clock, days_ahead=3)  # its card is always declined
    real = consumer.post_job(None)
    for job_id in (lapsing, closing, unmatched):
        job = consumer.wait(job_id, "offered")
        assert job["test_clock"] == clock_id
        # Set at the clock's time: exactly the offer's TTL after it.
        assert _at(job["offer_expires_at"]) == t0 + dt.timedelta(seconds=OFFER_TTL)
    declined.wait(failing, "offered")

    # The closing job goes to review_pending at the clock's time (its actions judged there:
    # the offer, long lapsed on real time, is still open on the clock).
    _ok(consumer.call("POST", f"/v1/jobs/{closing}/offer/accept"))
    _ok(declined.call("POST", f"/v1/jobs/{failing}/offer/accept"))
    for job_id in (closing, failing):
        wait_for(
            lambda job_id=job_id: any(
                o["job_id"] == job_id for o in _ok(worker.call("GET", "/v1/opportunities"))
            ),
            timeout=20,
            what=f"an opportunity on job {job_id}",
        )
        _ok(worker.call("POST", f"/v1/jobs/{job_id}/opportunity/accept"))
    consumer.wait(closing, "scheduled")
    declined.wait(failing, "scheduled")
    for job_id in (closing, failing):
        _ok(worker.call("POST", f"/v1/jobs/{job_id}/start"))
        _ok(worker.call("POST", f"/v1/jobs/{job_id}/complete"))
    review = consumer.wait(closing, "review_pending")
    assert _at(review["review_deadline"]) == t0 + dt.timedelta(seconds=REVIEW_WINDOW)
    # The declined card's first attempt ran at once; its retries wait for the clock.
    wait_for(
        lambda: any(e["type"] == "payment_attempt_refused" for e in declined.events(failing)),
        timeout=20,
        what="the first refused attempt",
    )
    _ok(consumer.call("POST", f"/v1/jobs/{unmatched}/offer/accept"))
    wait_for(
        lambda: any(o["job_id"] == unmatched for o in _ok(worker.call("GET", "/v1/opportunities"))),
        timeout=20,
        what="the unmatched job's opportunity",
    )

    # Real time goes on: the real job's 2 s offer lapses (sweeps and timers ran); nothing on
    # the clock moved, though its deadlines are two days past on real time.
    consumer.wait(real, "expired")
    assert consumer.job(lapsing)["status"] == "offered"
    assert consumer.job(closing)["status"] == "review_pending"
    assert consumer.job(unmatched)["status"] == "accepted"
    assert declined.job(failing)["status"] == "completed"
    assert _ok(declined.call("GET", f"/v1/test_clocks/{paying_clock}"))["status"] == "ready"
    # Nor does health count them as work waiting for a worker.
    health = _ok(stack.call("GET", "/healthz", token=ADMIN_TOKEN))  # the facts: the operator
    assert health["workers"]["waiting_seconds"] < 60

    # Advance eight days: every deadline up to then fires, each at its own time.
    real_offered = consumer.post_job(None)
    consumer.wait(real_offered, "offered")
    target = t0 + dt.timedelta(days=8)
    for party, which in ((consumer, clock_id), (declined, paying_clock)):
        body = {"frozen_time": target.isoformat()}
        advancing = _ok(party.call("POST", f"/v1/test_clocks/{which}/advance", body), 202)
        assert advancing["status"] == "advancing"
        done = wait_for(
            lambda party=party, which=which: (
                c
                if (c := _ok(party.call("GET", f"/v1/test_clocks/{which}")))["status"] == "ready"
                else None
            ),
            timeout=30,
            what=f"clock {which} ready",
        )
        assert _at(done["frozen_time"]) == target

    offer_deadline = t0 + dt.timedelta(seconds=OFFER_TTL)
    expired = _event(consumer.events(lapsing), "expired")
    assert consumer.job(lapsing)["status"] == "expired"
    assert _at(expired["created_at"]) == offer_deadline
    assert expired["data"]["late_by_seconds"] == 0

    closed = _event(consumer.events(closing), "closed")
    assert consumer.job(closing)["status"] == "closed"
    assert _at(closed["created_at"]) == t0 + dt.timedelta(seconds=REVIEW_WINDOW)

    # The unanswered opportunity lapsed at its deadline; the rounds that followed found no
    # one else, and the job ran out of rounds.
    assert consumer.job(unmatched)["status"] == "no_worker"
    unmatched_events = consumer.events(unmatched)
    lapsed = _event(unmatched_events, "opportunity_expired")
    offered = _event(unmatched_events, "opportunity_offered")
    assert _at(lapsed["created_at"]) == _at(offered["data"]["expires_at"])
    times = [_at(e["created_at"]) for e in unmatched_events]
    assert times == sorted(times), "deadlines fired out of order"

    # Payment retries: each attempt after its backoff on the clock, then payment_failed.
    assert declined.job(failing)["status"] == "payment_failed"
    refused = [e for e in declined.events(failing) if e["type"] == "payment_attempt_refused"]
    assert len(refused) == ATTEMPTS
    gaps = [
        (_at(b["created_at"]) - _at(a["created_at"])).total_seconds()
        for a, b in itertools.pairwise(refused)
    ]
    assert all(gap >= RETRY_BASE for gap in gaps), gaps

    # Real jobs are untouched by any clock.
    assert consumer.job(real_offered)["status"] == "offered"
    # The same notifications as on real time.
    feed = _ok(consumer.call("GET", "/v1/notifications"))
    kinds = {n["kind"] for n in (feed["data"] if isinstance(feed, dict) else feed)}
    assert {"expiry", "closure"} <= kinds


def test_bad_advances_and_other_parties_clocks_are_clear_4xx(stack: Client) -> None:
    owner = Party(stack, "consumers")
    other = Party(stack, "consumers")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    made = _ok(owner.call("POST", "/v1/test_clocks", {"frozen_time": now.isoformat()}), 201)
    path = f"/v1/test_clocks/{made['id']}"

    for when in (now - dt.timedelta(seconds=1), now, now + dt.timedelta(days=731)):
        bad = owner.call("POST", f"{path}/advance", {"frozen_time": when.isoformat()})
        assert bad.status == 422, bad
        assert "frozen_time" in bad.body["errors"]
    far = now + dt.timedelta(days=800)
    assert owner.call("POST", "/v1/test_clocks", {"frozen_time": far.isoformat()}).status == 422
    assert owner.call("POST", "/v1/test_clocks", {}).status == 422

    # Someone else's clock does not exist for them: not readable, not advanceable, not
    # deletable, not listed, and no job of theirs can be posted on it.
    assert other.call("GET", path).status == 404
    later = {"frozen_time": (now + dt.timedelta(days=1)).isoformat()}
    assert other.call("POST", f"{path}/advance", later).status == 404
    assert other.call("DELETE", path).status == 404
    assert _ok(other.call("GET", "/v1/test_clocks")) == []
    body = job_body() | {"test_clock": made["id"]}
    refused = other.call("POST", "/v1/jobs", body)
    assert refused.status == 422 and "test_clock" in refused.body["errors"], refused
    assert _ok(owner.call("GET", path))["frozen_time"] == made["frozen_time"]

    # Deleting cancels the clock's open jobs; the clock is gone for its owner too.
    job_id = owner.post_job(made["id"])
    owner.wait(job_id, "offered")
    assert owner.call("DELETE", path).status == 204
    assert owner.job(job_id)["status"] == "cancelled"
    assert owner.call("GET", path).status == 404
    assert owner.call("POST", "/v1/jobs", job_body() | {"test_clock": made["id"]}).status == 422


def test_a_job_on_a_clock_is_booked_ahead_of_its_clock_not_of_real_time(stack: Client) -> None:
    consumer = Party(stack, "consumers")
    year_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=365)).replace(microsecond=0)
    made = _ok(consumer.call("POST", "/v1/test_clocks", {"frozen_time": year_ago.isoformat()}), 201)

    def post(start: dt.datetime, clock_id: int | None) -> Answer:
        body = job_body(start=start) | ({"test_clock": clock_id} if clock_id else {})
        return consumer.call("POST", "/v1/jobs", body)

    on_clock = post(year_ago + dt.timedelta(days=2), made["id"])
    assert on_clock.status == 201, on_clock
    assert _at(on_clock.body["created_at"]) == year_ago
    before_clock = post(year_ago - dt.timedelta(hours=1), made["id"])
    assert before_clock.status == 422 and "scheduled_start" in before_clock.body["errors"]
    real = post(year_ago + dt.timedelta(days=2), None)
    assert real.status == 422, real
    assert real.body["errors"]["scheduled_start"] == ["Must be in the future."]


def test_healthz_and_the_startup_logs_say_test_clocks_are_on(
    stack: Client, stack_logs: Path
) -> None:
    assert _ok(stack.call("GET", "/healthz"))["test_clocks"] == "on"
    for log in ("gunicorn.log", "worker.log"):
        assert "test clocks are on (GIGCO_TEST_CLOCKS=1)" in (stack_logs / log).read_text(), log
