"""The operators' console: a signed-in client, jobs driven to known states, HTML readers."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from gigco.models import Category, Consumer, Job, JobStatus
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, wait_for

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token rendered into a page's forms."""
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


class _Tables(HTMLParser):
    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.depth, self.rows = table_id, 0, []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row of the table ``table_id`` (the header row dropped)."""
    parser = _Tables(table_id)
    parser.feed(html)
    return [row for row in parser.rows if row][1:]


class Ops:
    """A browser-like client of the console."""

    def __init__(self, client: FlaskClient):
        self.client = client

    def login(self, token: str = ADMIN_TOKEN, next_: str = "/ops/") -> TestResponse:
        """Fill in and send the login form."""
        page = self.client.get("/ops/login")
        return self.client.post(
            "/ops/login", data={"csrf_token": csrf_from(page.text), "token": token, "next": next_}
        )

    def page(self, path: str) -> TestResponse:
        """GET a console page that must render."""
        r = self.client.get(path)
        assert r.status_code == 200, (r.status_code, r.text[:500])
        return r

    def submit(self, form_page: str, action: str, **data: str) -> TestResponse:
        """POST a form the way a browser would: with the CSRF token of the page it is on."""
        token = csrf_from(self.page(form_page).text)
        return self.client.post(action, data={"csrf_token": token, **data})


@pytest.fixture
def ops(app: Flask) -> Ops:
    """A client signed in to the console."""
    console = Ops(app.test_client())
    assert console.login().status_code == 303
    return console


@pytest.fixture
def isolated_app(app: Flask, isolated_sessions: sessionmaker[Session]) -> Flask:
    """The app reading and writing inside the test's rolled-back transaction (no worker sees)."""
    app.extensions["gigco_sessions"] = isolated_sessions
    app.extensions["gigco_read_sessions"] = isolated_sessions
    return app


# --- jobs in known states ---------------------------------------------------------------


def closed_job(api: Api, **job: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """A job driven over HTTP from draft to closed; returns it with its consumer and worker."""
    consumer, worker = api.consumer(), api.worker()
    job_id = api.post_job(consumer, **job)["id"]
    api.wait_status(job_id, "offered")
    assert api.signal(job_id, "offer/accept", consumer).status_code == 200
    wait_for(
        lambda: api.client.get("/v1/opportunities", headers=worker["headers"]).json,
        what="an opportunity for the worker",
    )
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    assert api.signal(job_id, "start", worker).status_code == 200
    assert api.signal(job_id, "complete", worker).status_code == 200
    api.wait_status(job_id, "review_pending")
    for party, review in ((consumer, {"rating": 5, "comment": "Great"}), (worker, {"rating": 4})):
        r = api.client.post(f"/v1/jobs/{job_id}/reviews", json=review, headers=party["headers"])
        assert r.status_code == 201, r.json
    api.wait_status(job_id, "closed")
    return job_id, consumer, worker


def failed_payment_job(api: Api) -> int:
    """A job whose consumer's card is always declined, left in payment_failed."""
    consumer = api.consumer(payment_method="pm_card_chargeDeclined")
    worker = api.worker()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    assert api.signal(job_id, "offer/accept", consumer).status_code == 200
    wait_for(
        lambda: api.client.get("/v1/opportunities", headers=worker["headers"]).json,
        what="an opportunity for the worker",
    )
    assert api.signal(job_id, "opportunity/accept", worker).status_code == 200
    api.wait_status(job_id, "scheduled")
    assert api.signal(job_id, "start", worker).status_code == 200
    assert api.signal(job_id, "complete", worker).status_code == 200
    api.wait_status(job_id, "payment_failed")
    return job_id


def add_jobs(session: Session, count: int, status: JobStatus, **values: Any) -> list[Job]:
    """``count`` plumbing jobs written straight into the database, in ``status``."""
    consumer = Consumer(name="Row Factory", email=f"rows-{dt.datetime.now().timestamp()}@x.test")
    session.add(consumer)
    session.flush()
    category = session.scalar(sa.select(Category).where(Category.name == "plumbing"))
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    jobs = [
        Job(
            consumer_id=consumer.id,
            category=category,
            title=f"{status.value} job {n}",
            lat=52.5,
            lng=13.4,
            scheduled_start=start,
            scheduled_end=start + dt.timedelta(hours=2),
            estimated_hours=2,
            status=status,
            **values,
        )
        for n in range(count)
    ]
    session.add_all(jobs)
    session.flush()
    return jobs
