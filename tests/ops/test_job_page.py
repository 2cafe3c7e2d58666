"""The job page: its whole history, side rows, and the payment retry an operator may do."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from gigco.models import JobStatus
from gigco.testing import GigCo
from gigco.web.ops.helpers import when
from tests import factories as f
from tests.harness.console import Ops, table
from tests.harness.http import Api
from tests.harness.journeys import closed_job
from tests.harness.kit import KIT_SETTINGS, OPERATOR, failed_payment_on_clock, refused


@pytest.fixture
def gigco_settings() -> dict[str, str]:
    """The ``gigco`` kit's GigCo: the run's operator token (its console's login) and
    payment budget."""
    return KIT_SETTINGS


def test_job_page_shows_the_whole_timeline_of_a_closed_job(api: Api, ops: Ops) -> None:
    job_id, consumer, worker = closed_job(api)
    page = ops.page(f"/ops/jobs/{job_id}").text
    c, w = f"consumer:{consumer['id']}", f"worker:{worker['id']}"

    timeline = [
        (seq, type_, move, actor) for seq, _at, type_, move, actor, _data in table(page, "timeline")
    ]
    assert timeline == [
        ("1", "created", "∅ → draft", c),
        ("2", "priced", "draft → priced", "system"),
        ("3", "offered", "priced → offered", "system"),
        ("4", "accepted", "offered → accepted", c),
        ("5", "matching_round_started", "", "system"),
        ("6", "opportunity_offered", "", "system"),
        ("7", "worker_assigned", "accepted → worker_assigned", w),
        ("8", "scheduled", "worker_assigned → scheduled", "system"),
        ("9", "in_progress", "scheduled → in_progress", w),
        ("10", "completed", "in_progress → completed", w),
        ("11", "paid", "completed → paid", "system"),
        ("12", "review_pending", "paid → review_pending", "system"),
        ("13", "review_received", "", c),
        ("14", "review_received", "", w),
        ("15", "closed", "review_pending → closed", "system"),
    ]
    rows = table(page, "timeline")
    assert all(row[1].endswith("Z") for row in rows)  # every event has its time
    assert '"price_cents": 19800' in rows[1][5]  # and its data

    assert 'status status-closed">closed' in page
    assert f"#{worker['id']} {worker['name']}" in page  # assigned worker, and the opportunity
    assert "198.00 USD" in page and "succeeded" in page  # the payment and its attempt
    assert "Great" in page and "5 / 5" in page  # the consumer's review
    for kind in ("offer", "assignment", "schedule", "payment_receipt", "review_request", "closure"):
        assert f"<td>{kind}</td>" in page
    assert "Retry payment" not in page  # nothing to retry on a paid job


def test_retry_on_a_job_that_is_not_payment_failed_explains_why(api: Api, ops: Ops) -> None:
    job_id, _, _ = closed_job(api)
    r = ops.submit(f"/ops/jobs/{job_id}", f"/ops/jobs/{job_id}/payment/retry", reason="why not")
    assert r.status_code == 409
    assert f"Job {job_id} is closed; retrying the payment is not allowed" in r.text
    assert f'href="/ops/jobs/{job_id}"' in r.text
    assert api.job(job_id)["status"] == "closed"


def test_operator_retries_a_failed_payment_from_the_job_page(gigco: GigCo) -> None:
    # On a test clock of the in-process kit: the declined card's retries come when the test
    # advances the clock past their backoff, not after it in real time.
    ops = Ops(gigco.client)
    assert ops.login().status_code == 303
    consumer = gigco.consumer(payment_method="pm_card_chargeDeclined")
    job_id, clock = failed_payment_on_clock(gigco, consumer)
    page = ops.page(f"/ops/jobs/{job_id}").text
    assert "Retry payment" in page
    assert [row[2] for row in table(page, "timeline")][-4:] == [
        "payment_attempt_refused",
        "payment_attempt_refused",
        "payment_attempt_refused",
        "payment_failed",
    ]

    forged = ops.client.post(f"/ops/jobs/{job_id}/payment/retry", data={"csrf_token": "x"})
    assert forged.status_code == 400
    assert gigco.job(OPERATOR, job_id)["status"] == "payment_failed"

    r = ops.submit(
        f"/ops/jobs/{job_id}", f"/ops/jobs/{job_id}/payment/retry", reason="card replaced"
    )
    assert r.status_code == 303
    assert r.headers["Location"] == f"/ops/jobs/{job_id}"
    after = ops.page(f"/ops/jobs/{job_id}").text
    assert f"Payment retry started for job {job_id}" in after
    retry = next(row for row in table(after, "timeline") if row[2] == "payment_retry")
    assert retry[3:5] == ["payment_failed → completed", "operator"]
    assert '"reason": "card replaced"' in retry[5]

    # The declined card is charged again, three more times, and fails again.
    gigco.run()
    assert (gigco.job(OPERATOR, job_id)["status"], refused(gigco, job_id)) == ("completed", 4)
    clock.advance(hours=1)
    assert gigco.job(OPERATOR, job_id)["status"] == "payment_failed"
    attempts = gigco.call("GET", f"/v1/jobs/{job_id}/payment", OPERATOR)["attempts"]
    assert [a["outcome"] for a in attempts] == ["declined"] * 6
    final = ops.page(f"/ops/jobs/{job_id}").text
    assert len(table(final, "timeline")) == len(table(after, "timeline")) + 4
    assert "Retry payment" in final


def test_html_in_user_input_is_shown_as_text(api: Api, ops: Ops) -> None:
    consumer = api.consumer(name='<img src=x onerror="alert(1)">')
    title = '<script>alert("t")</script><b>Fix</b>'
    job_id = api.post_job(consumer, title=title, description='<i>pipes</i> & "quotes"')["id"]
    api.wait_status(job_id, "offered")

    for path in (f"/ops/jobs/{job_id}", "/ops/jobs", "/ops/jobs?status=offered"):
        page = ops.page(path).text
        assert "<script>alert" not in page and "<b>Fix</b>" not in page
        assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;&lt;b&gt;Fix&lt;/b&gt;" in page
    page = ops.page(f"/ops/jobs/{job_id}").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert "&lt;i&gt;pipes&lt;/i&gt; &amp; &#34;quotes&#34;" in page
    # The title also reaches the offer notification, where it is escaped too.
    offer = next(row for row in table(page, "timeline") if row[2] == "offered")
    assert offer[3] == "priced → offered"
    assert "Your job &#39;&lt;script&gt;" in page


def test_the_timers_name_the_deadline_the_status_waits_on(
    isolated_app: Flask, ops: Ops, session: Session
) -> None:
    """An accepted job's timer_at is the next round's only between rounds; a payment is due
    at its backoff's end, or since its step became due."""
    later = dt.datetime(2031, 1, 1, 12, tzinfo=dt.UTC)
    between_rounds = f.job(session, status=JobStatus.ACCEPTED, match_round=1, timer_at=later)
    offering = f.job(session, status=JobStatus.ACCEPTED, match_round=1, timer_at=later)
    f.opportunity(session, offering, f.worker(session), expires_at=later)
    backing_off = f.job(session, status=JobStatus.COMPLETED, timer_at=later)
    due_now = f.job(session, status=JobStatus.COMPLETED, step_due_at=later)
    session.flush()

    def row(job_id: int, label: str) -> str:
        page = ops.page(f"/ops/jobs/{job_id}").text
        found = re.search(rf"<tr><th>{label}</th><td>([^<]*)</td>", page)
        assert found, page
        return found[1]

    assert row(between_rounds.id, "next matching round") == when(later)
    assert row(offering.id, "next matching round") == "—"
    assert row(backing_off.id, "next payment attempt") == when(later)
    assert row(due_now.id, "next payment attempt") == when(later)
