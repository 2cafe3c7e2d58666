"""Finding jobs by filter, and the operator acting on one job or on many (CSRF, confirmed)."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from gigco.config import Settings
from gigco.models import Job, JobStatus
from tests import factories as f
from tests.harness.console import Ops, csrf_from, table
from tests.harness.http import Api
from tests.harness.journeys import closed_job, hold_offers
from tests.harness.polling import wait_for


def _ids(html: str, table_id: str = "jobs") -> list[int]:
    return [int(row[0].lstrip("#")) for row in table(html, table_id)]


def test_filters_narrow_the_list_and_live_in_the_url(
    isolated_app: Flask, ops: Ops, session: Session, settings: Settings
) -> None:
    now = dt.datetime.now(dt.UTC)
    ann, bob = f.consumer(session), f.consumer(session)
    worker = f.worker(session)
    soon = f.job(session, ann, status=JobStatus.SCHEDULED, start=now + dt.timedelta(days=1))
    soon.worker_id = worker.id
    later = f.job(session, ann, status=JobStatus.OFFERED, start=now + dt.timedelta(days=30))
    wired = f.job(session, bob, status=JobStatus.OFFERED, cat="electrical")
    overdue = f.job(
        session,
        bob,
        status=JobStatus.ACCEPTED,
        timer_at=now - dt.timedelta(minutes=5),
    )
    old = f.job(session, bob, status=JobStatus.CANCELLED)
    old.created_at = now - dt.timedelta(days=10)
    session.flush()

    def ids(query: str) -> list[int]:
        return _ids(ops.page(f"/ops/jobs?{query}").text)

    assert ids(f"consumer={ann.id}") == [later.id, soon.id]
    assert ids(f"worker={worker.id}") == [soon.id]
    assert ids("category=electrical") == [wired.id]
    assert ids(f"consumer={bob.id}&status=offered") == [wired.id]
    assert ids("overdue=1") == [overdue.id]
    day = (now - dt.timedelta(days=10)).date().isoformat()
    assert ids(f"created_from={day}&created_to={day}") == [old.id]
    assert old.id not in ids(f"created_from={(now - dt.timedelta(days=1)).date()}")
    start = (now + dt.timedelta(days=25)).date().isoformat()
    assert ids(f"scheduled_from={start}&consumer={ann.id}") == [later.id]
    assert ids(f"scheduled_to={(now + dt.timedelta(days=3)).date()}&consumer={ann.id}") == [soon.id]
    assert ids("category=moving") == []

    # The form shows the filter it was sent, and bulk actions come back to the same URL.
    page = ops.page(f"/ops/jobs?consumer={ann.id}&overdue=1").text
    assert f'name="consumer" inputmode="numeric" size="6" value="{ann.id}"' in page
    assert 'name="overdue" value="1" checked' in page


def test_cursor_pages_keep_the_filter(isolated_app: Flask, ops: Ops, session: Session) -> None:
    ann = f.consumer(session)
    made = f.jobs(session, 53, ann, status=JobStatus.OFFERED)
    f.jobs(session, 3, status=JobStatus.OFFERED)  # someone else's
    first = ops.page(f"/ops/jobs?consumer={ann.id}").text
    shown = _ids(first)
    assert len(shown) == 50
    assert f'rel="next" href="/ops/jobs?after={shown[-1]}&amp;consumer={ann.id}"' in first
    rest = _ids(ops.page(f"/ops/jobs?after={shown[-1]}&consumer={ann.id}").text)
    assert shown + rest == sorted((j.id for j in made), reverse=True)


def test_operator_cancels_one_job_with_a_reason(api: Api, ops: Ops) -> None:
    consumer = api.consumer()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    page = ops.page(f"/ops/jobs/{job_id}").text
    assert 'id="cancel"' in page and 'id="retry"' not in page

    missing = ops.submit(f"/ops/jobs/{job_id}", f"/ops/jobs/{job_id}/cancel", reason="   ")
    assert missing.status_code == 422 and "Give a reason." in missing.text
    assert api.job(job_id)["status"] == "offered"

    r = ops.submit(f"/ops/jobs/{job_id}", f"/ops/jobs/{job_id}/cancel", reason="duplicate job")
    assert r.status_code == 303
    assert api.job(job_id)["status"] == "cancelled"
    row = table(ops.page(f"/ops/jobs/{job_id}").text, "timeline")[-1]
    assert row[2:5] == ["cancelled", "offered → cancelled", "operator"]
    assert '"reason": "duplicate job"' in row[5]
    feed = api.client.get("/v1/notifications", headers=consumer["headers"]).json
    assert any("cancelled by GigCo support" in n["message"] for n in feed)

    again = ops.submit("/ops/jobs", f"/ops/jobs/{job_id}/cancel", reason="twice")
    assert again.status_code == 409 and "cancelling is not allowed" in again.text


def test_closed_job_offers_neither_cancel_nor_rekick(api: Api, ops: Ops) -> None:
    job_id, _, _ = closed_job(api)
    page = ops.page(f"/ops/jobs/{job_id}").text
    assert 'id="cancel"' not in page and 'id="rekick"' not in page
    r = ops.submit("/ops/jobs", f"/ops/jobs/{job_id}/rekick", reason="try")
    assert r.status_code == 409 and "no system step is pending" in r.text


def test_bulk_cancel_confirms_then_reports_each_job(
    api: Api, ops: Ops, sessions: sessionmaker[Session]
) -> None:
    consumer = api.consumer()
    open_ids = [api.post_job(consumer, title=f"Job {i}")["id"] for i in range(2)]
    for job_id in open_ids:
        api.wait_status(job_id, "offered")
    hold_offers(sessions, open_ids)
    done_id, _, _ = closed_job(api)
    listing = f"/ops/jobs?consumer={consumer['id']}"
    page = ops.page(listing).text
    assert _ids(page) == sorted(open_ids, reverse=True)
    token = csrf_from(page)
    picked = [*open_ids, done_id]
    form = {"action": "cancel", "reason": "fraud ring", "job": [str(i) for i in picked]}

    forged = ops.client.post(
        "/ops/jobs/bulk", data={**form, "csrf_token": "nope", "confirm": "yes"}
    )
    assert forged.status_code == 400
    no_reason = ops.client.post("/ops/jobs/bulk", data={**form, "csrf_token": token, "reason": ""})
    assert no_reason.status_code == 400

    confirm = ops.client.post("/ops/jobs/bulk", data={**form, "csrf_token": token, "back": listing})
    assert confirm.status_code == 200
    assert _ids(confirm.text, "confirm-jobs") == picked
    assert "Cancel: 3 jobs?" in confirm.text
    assert [api.job(i)["status"] for i in open_ids] == ["offered", "offered"]  # not yet

    result = ops.client.post(
        "/ops/jobs/bulk", data={**form, "csrf_token": token, "confirm": "yes", "back": listing}
    )
    assert result.status_code == 200
    rows = table(result.text, "results")
    assert [(r[0], r[1]) for r in rows] == [
        (f"#{open_ids[0]}", "done"),
        (f"#{open_ids[1]}", "done"),
        (f"#{done_id}", "refused"),
    ]
    assert rows[0][2] == "now cancelled"
    assert f"Job {done_id} is closed; cancelling is not allowed" in rows[2][2]
    assert "Cancel: 2 of 3 done" in result.text
    assert f'href="/ops/jobs?consumer={consumer["id"]}"' in result.text
    assert [api.job(i)["status"] for i in open_ids] == ["cancelled", "cancelled"]
    for job_id in open_ids:
        last = api.events(job_id)[-1]
        assert (last["type"], last["actor"]) == ("cancelled", "operator")
        assert last["data"] == {"reason": "fraud ring"}
    assert api.job(done_id)["status"] == "closed"


def test_bulk_rekick_sends_a_stuck_step_again(api: Api, ops: Ops, sessions, settings) -> None:  # type: ignore[no-untyped-def]
    """A job whose step message was lost moves on once re-kicked; the live worker runs the
    step."""
    now = dt.datetime.now(dt.UTC)
    with sessions() as s, s.begin():
        # Due inside the grace (as test_jobs_list's fixture): the live sweeper leaves it alone,
        # so only the operator's re-kick moves it on. The overdue filter is tested there.
        stuck = f.job(s, status=JobStatus.DRAFT, step_due_at=now + dt.timedelta(minutes=1))
        job_id = stuck.id
    page = ops.page("/ops/jobs?status=draft").text
    assert _ids(page) == [job_id]
    token = csrf_from(page)
    r = ops.client.post(
        "/ops/jobs/bulk",
        data={
            "csrf_token": token,
            "action": "rekick",
            "reason": "lost message",
            "job": str(job_id),
            "confirm": "yes",
        },
    )
    assert r.status_code == 200
    assert table(r.text, "results")[0][1] == "done"
    wait_for(lambda: api.job(job_id)["status"] == "offered", what="the re-kicked job priced")
    kick = next(e for e in api.events(job_id) if e["type"] == "operator_rekick")
    assert kick["actor"] == "operator"
    assert kick["data"]["reason"] == "lost message" and kick["data"]["step"] == "price_job"


def test_the_job_page_shows_the_policy_and_moves_one_job_or_many_to_the_newest(
    isolated_app: Flask, ops: Ops, session: Session, settings: Settings
) -> None:
    # Version 1 is the defaults (the migration's); the run's settings are the newest policy.
    old, other = f.jobs(session, 2, status=JobStatus.OFFERED, policy_version=1)
    ended = f.job(session, status=JobStatus.CLOSED, policy_version=1)
    session.flush()
    page = ops.page(f"/ops/jobs/{old.id}").text
    assert "Policy v1" in page and 'id="upgrade-policy"' in page
    assert ["offer_ttl_seconds", "86400.0"] in table(page, "policy-values")
    assert 'id="upgrade-policy"' not in ops.page(f"/ops/jobs/{ended.id}").text

    r = ops.submit(f"/ops/jobs/{old.id}", f"/ops/jobs/{old.id}/policy/upgrade", reason="new fee")
    assert r.status_code == 303
    page = ops.page(f"/ops/jobs/{old.id}").text
    newest = session.get(Job, old.id, populate_existing=True).policy_version  # type: ignore[union-attr]
    assert newest != 1 and f"Policy v{newest}" in page
    assert ["offer_ttl_seconds", str(settings.offer_ttl_seconds)] in table(page, "policy-values")

    token = csrf_from(ops.page("/ops/jobs").text)
    form = {
        "action": "upgrade_policy",
        "reason": "new rules",
        "job": [str(other.id), str(ended.id)],
    }
    confirm = ops.client.post("/ops/jobs/bulk", data={**form, "csrf_token": token})
    assert confirm.status_code == 200 and _ids(confirm.text, "confirm-jobs") == [other.id, ended.id]
    assert session.get(Job, other.id, populate_existing=True).policy_version == 1  # type: ignore[union-attr]
    result = ops.client.post("/ops/jobs/bulk", data={**form, "csrf_token": token, "confirm": "yes"})
    rows = table(result.text, "results")
    assert [(r[0], r[1]) for r in rows] == [(f"#{other.id}", "done"), (f"#{ended.id}", "refused")]
    assert session.get(Job, other.id, populate_existing=True).policy_version == newest  # type: ignore[union-attr]
    assert session.get(Job, ended.id, populate_existing=True).policy_version == 1  # type: ignore[union-attr]
