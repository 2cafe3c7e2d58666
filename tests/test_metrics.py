"""Prometheus metrics: the API's /metrics (from the database) and the worker's own exporter."""

from __future__ import annotations

import datetime as dt
import io
import logging
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from gigco import logs
from gigco.config import Settings
from gigco.models import Job, JobStatus
from gigco.tasks import configure as configure_celery
from gigco.tasks import runtime as task_runtime
from gigco.tasks.app import task_log_context
from gigco.tasks.steps import expire_offer
from gigco.web import create_app
from gigco.web.metrics import CACHE_SECONDS
from tests import factories as f
from tests.harness.console import Ops
from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import Api
from tests.harness.journeys import closed_job
from tests.harness.polling import wait_for
from tests.harness.servers import free_port, start_worker, stop_worker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, or None when it is not exposed."""
    return found.get((name, frozenset(labels.items())))


OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def fresh(app: Flask) -> Flask:
    """The app, its database reading not cached (the app is shared by the session's tests)."""
    app.extensions["gigco_metrics_database"].ttl = 0
    return app


@pytest.fixture(autouse=True)
def _restore_cache(app: Flask) -> Iterator[None]:
    yield
    app.extensions["gigco_metrics_database"].ttl = CACHE_SECONDS


def test_metrics_count_jobs_per_status_and_transitions_after_a_lifecycle(
    api: Api, app: Flask
) -> None:
    closed_job(api)
    offered = api.post_job(api.consumer())["id"]
    api.wait_status(offered, "offered")

    r = fresh(app).test_client().get("/metrics", headers=OPERATOR)
    assert r.status_code == 200
    assert r.content_type.startswith("text/plain; version=0.0.4")
    found = samples(r.text)
    assert value(found, "gigco_jobs", status="closed") == 1
    assert value(found, "gigco_jobs", status="offered") == 1
    assert value(found, "gigco_jobs", status="payment_failed") == 0
    for type_, from_, to, count in [
        ("created", "", "draft", 2),
        ("priced", "draft", "priced", 2),
        ("offered", "priced", "offered", 2),
        ("paid", "completed", "paid", 1),
        ("closed", "review_pending", "closed", 1),
    ]:
        labels = {"type": type_, "from_status": from_, "to_status": to}
        assert value(found, "gigco_job_transitions_total", **labels) == count, labels
    assert value(found, "gigco_job_events_total", type="review_received") == 2
    assert value(found, "gigco_jobs_overdue", kind="timer") == 0
    assert value(found, "process_resident_memory_bytes")

    openmetrics = app.test_client().get(
        "/metrics", headers={**OPERATOR, "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.content_type.startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_metrics_count_overdue_jobs(
    app: Flask, isolated_sessions: sessionmaker[Session], session: Session, settings: Settings
) -> None:
    app.extensions["gigco_sessions"] = isolated_sessions
    app.extensions["gigco_read_sessions"] = isolated_sessions
    now = dt.datetime.now(dt.UTC)
    f.jobs(session, 2, status=JobStatus.SCHEDULED, timer_at=now - dt.timedelta(minutes=5))
    grace = dt.timedelta(seconds=settings.stuck_step_grace_seconds)
    f.jobs(session, 1, status=JobStatus.IN_PROGRESS, step_due_at=now - grace * 3)
    f.jobs(session, 1, status=JobStatus.IN_PROGRESS, step_due_at=now)  # inside the grace
    found = samples(fresh(app).test_client().get("/metrics", headers=OPERATOR).text)
    assert value(found, "gigco_jobs_overdue", kind="timer") == 2
    assert value(found, "gigco_jobs_overdue", kind="step") == 1
    assert value(found, "gigco_jobs", status="in_progress") == 2


def test_metrics_are_for_the_operator_only(app: Flask) -> None:
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": ADMIN_TOKEN}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert "gigco_jobs" not in r.text
    assert client.get("/metrics", headers=OPERATOR).status_code == 200


SCRAPE_TOKEN = "prometheus-scrape-token-0123"


@pytest.fixture
def scraped_app(settings: Settings, committed: None) -> Iterator[Flask]:
    """The app with a scrape token; the shared Celery app is restored afterwards."""
    try:
        yield create_app(settings.replace(metrics_token=SCRAPE_TOKEN))
    finally:
        configure_celery(settings)


def test_the_scrape_token_reads_metrics_and_opens_nothing_else(scraped_app: Flask) -> None:
    client = scraped_app.test_client()
    scrape = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    r = client.get("/metrics", headers=scrape)
    assert r.status_code == 200 and "gigco_jobs" in r.text
    assert client.get("/metrics", headers=OPERATOR).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401

    # Every API route answers the scrape token as it answers nobody: 401 where a token is
    # needed, the public answer elsewhere.
    answers = {}
    for rule in scraped_app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = rule.rule.replace("<id:", "<").replace("<", "").replace(">", "")
        path = "/".join("1" if part.endswith("_id") else part for part in path.split("/"))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            as_scraper = client.open(path, method=method, headers=scrape)
            as_nobody = client.open(path, method=method)
            assert as_scraper.status_code == as_nobody.status_code, (method, path)
            answers[f"{method} {rule.rule}"] = as_scraper.status_code
    assert answers["GET /v1/me"] == answers["GET /v1/jobs"] == 401
    assert answers["POST /v1/jobs/<id:job_id>/cancel"] == 401
    assert sum(code == 401 for code in answers.values()) > 20

    # Nor does it open the console.
    ops = Ops(scraped_app.test_client())
    refused = ops.login(token=SCRAPE_TOKEN)
    assert refused.status_code == 401 and "That token is not valid." in refused.text
    assert ops.client.get("/ops/", headers=scrape).status_code == 302


def test_a_scrape_within_the_cache_window_reads_nothing_from_the_database(
    app: Flask, isolated_sessions: sessionmaker[Session], session: Session
) -> None:
    app.extensions["gigco_sessions"] = isolated_sessions
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    client = fresh(app).test_client()
    before = value(
        samples(client.get("/metrics", headers=OPERATOR).text), "gigco_jobs", status="draft"
    )
    app.extensions["gigco_metrics_database"].ttl = CACHE_SECONDS
    f.jobs(session, 3)
    sa.event.listen(session.connection(), "before_cursor_execute", listen)
    try:
        again = samples(client.get("/metrics", headers=OPERATOR).text)
    finally:
        sa.event.remove(session.connection(), "before_cursor_execute", listen)
    assert statements == []
    assert value(again, "gigco_jobs", status="draft") == before  # cached
    app.extensions["gigco_metrics_database"].ttl = 0
    now = samples(client.get("/metrics", headers=OPERATOR).text)
    assert value(now, "gigco_jobs", status="draft") == (before or 0) + 3


@pytest.fixture
def isolated_tasks(settings: Settings, isolated_sessions: sessionmaker[Session]) -> Iterator[None]:
    """Tasks called in this process run inside the test's rolled-back transaction."""
    rt = task_runtime.use_settings(settings)
    rt.__dict__["sessions"] = isolated_sessions
    yield
    rt.__dict__.pop("sessions", None)


def test_a_deadline_counts_once_in_timer_lateness_however_often_it_is_delivered(
    session: Session, isolated_tasks: None
) -> None:
    late_by = dt.timedelta(seconds=2)
    due = dt.datetime.now(dt.UTC) - late_by
    (job,) = f.jobs(session, 1, status=JobStatus.OFFERED, offer_expires_at=due, timer_at=due)
    labels = {"step": "expire_offer"}
    count_before = REGISTRY.get_sample_value("gigco_timer_lateness_seconds_count", labels) or 0
    sum_before = REGISTRY.get_sample_value("gigco_timer_lateness_seconds_sum", labels) or 0

    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logs.KeyValueFormatter(context=task_log_context))
    task_log = logging.getLogger("gigco.tasks")
    task_log.addHandler(handler)
    task_log.setLevel(logging.INFO)
    try:
        expire_offer(job.id)
        expire_offer(job.id)  # a duplicate delivery: the job has moved on
    finally:
        task_log.removeHandler(handler)
        task_log.setLevel(logging.NOTSET)

    assert session.get(Job, job.id, populate_existing=True).status == JobStatus.EXPIRED
    count = REGISTRY.get_sample_value("gigco_timer_lateness_seconds_count", labels)
    late = REGISTRY.get_sample_value("gigco_timer_lateness_seconds_sum", labels) - sum_before
    assert count == count_before + 1
    assert 2 <= late < 30
    first = lines.getvalue().splitlines()[0]
    assert 'msg="step done"' in first
    assert f"task=gigco.tasks.steps.expire_offer job_id={job.id}" in first


def _scrape(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def test_worker_serves_its_own_metrics_and_logs_one_line_per_record(
    test_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    env = {**test_env, "GIGCO_LOG_LEVEL": "DEBUG"}
    args = ("-n", "metrics@%h", "--loglevel", "DEBUG", "--metrics-address", "127.0.0.1")
    worker: subprocess.Popen[bytes] = start_worker(env, log, *args, "--metrics-port", str(port))
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def swept() -> Samples | None:
            text = _scrape(url)
            found = samples(text) if text else {}
            return found if (value(found, "gigco_sweep_duration_seconds_count") or 0) > 0 else None

        found = wait_for(swept, timeout=30, every=0.2, what="the worker to serve a sweep")
        assert 0 < (value(found, "gigco_sweep_duration_seconds_sum") or 0) < 10
        assert value(found, "gigco_sweep_duration_seconds_bucket", le="+Inf") >= 1
        text = _scrape(url) or ""
        assert "# TYPE gigco_timer_lateness_seconds histogram" in text
    finally:
        stop_worker(worker)

    lines = log.read_text().splitlines()
    assert ADMIN_TOKEN not in "\n".join(lines)
    sweeps = [line for line in lines if "msg=sweep" in line]
    assert sweeps, lines[-20:]
    assert sweeps[0].startswith("ts=")
    for line in sweeps:  # an idle sweep is a DEBUG line, one that did something INFO
        idle = " timers=0 stuck=0 deliveries=0 refunds=0 sent=0" in line
        assert (" level=DEBUG " if idle else " level=INFO ") in line, line
    assert "task=gigco.tasks.sweeps.sweep" in sweeps[0] and "task_id=" in sweeps[0]
    assert any(f"worker metrics on http://127.0.0.1:{port}/metrics" in line for line in lines)
