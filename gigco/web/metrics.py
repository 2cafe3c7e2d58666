"""``GET /metrics`` for Prometheus (scrape token or operator): database series plus the process's.

``DatabaseCollector`` reads jobs per status and history events per kind from the counters
the database keeps (``gigco.lifecycle.counts``: a few hundred rows at any size) and counts
overdue jobs over the deadline indexes (cost grows with what is overdue), at most once per
``CACHE_SECONDS`` per process; scrapes in between are answered from memory, and anonymous
callers (401) cost nothing. PostgreSQL is the source of truth, so every API process (and
every replica) answers the same, with no shared state. Prometheus sends the scrape-only
``GIGCO_METRICS_TOKEN`` (``authorization: {credentials: …}`` in its scrape config), which
opens this page and nothing else; the operator's token opens it too.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
import time
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.counts import events_per_kind, jobs_per_status
from gigco.lifecycle.timers import REAL_TIME
from gigco.models import Job, JobStatus

CACHE_SECONDS = 15.0


class DatabaseCollector(Collector):
    """Jobs per status, events per type and overdue jobs, read at most every ``ttl`` s."""

    def __init__(self, sessions: Callable[[], Session], settings: Settings):
        self.sessions = sessions
        self.settings = settings
        self.ttl = CACHE_SECONDS
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        """The last reading, or a fresh one when it is older than ``ttl`` (one at a time)."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= self.ttl:
                self._cached = (time.monotonic(), list(self._read()))
            return iter(self._cached[1])

    def _read(self) -> Iterator[Metric]:
        """Four queries: the two counter tables, two counts over the deadline indexes."""
        now = clock.now()
        grace = dt.timedelta(seconds=self.settings.stuck_step_grace_seconds)
        with self.sessions() as session:
            by_status = jobs_per_status(session)
            events = events_per_kind(session)
            # Jobs on real time only: a test clock's jobs are never overdue on it.
            timers = session.scalar(
                sa.select(sa.func.count()).where(
                    Job.timer_at.is_not(None), REAL_TIME, Job.timer_at < now
                )
            )
            steps = session.scalar(
                sa.select(sa.func.count()).where(
                    Job.step_due_at.is_not(None),
                    REAL_TIME,
                    Job.step_due_at < now - grace,
                )
            )
        jobs = GaugeMetricFamily("gigco_jobs", "Jobs per status.", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], by_status[status])
        yield jobs
        transitions = CounterMetricFamily(
            "gigco_job_transitions",
            "Status changes recorded in job history, by event type and from/to status.",
            labels=["type", "from_status", "to_status"],
        )
        all_events = CounterMetricFamily(
            "gigco_job_events",
            "Job history events (status changes or not), by type.",
            labels=["type"],
        )
        per_type: dict[str, int] = {}
        for (type_, from_, to), count in sorted(events.items(), key=str):
            per_type[type_] = per_type.get(type_, 0) + count
            if to is not None:
                transitions.add_metric([type_, from_.value if from_ else "", to.value], count)
        for type_, count in sorted(per_type.items()):
            all_events.add_metric([type_], count)
        yield transitions
        yield all_events
        overdue = GaugeMetricFamily(
            "gigco_jobs_overdue",
            "Jobs whose deadline has passed (timer) or whose step is overdue past the grace "
            "(step); both should stay near 0.",
            labels=["kind"],
        )
        overdue.add_metric(["timer"], timers or 0)
        overdue.add_metric(["step"], steps or 0)
        yield overdue


blp = Blueprint("metrics", __name__)

_REGISTRY = "gigco_metrics_registry"
_COLLECTOR = "gigco_metrics_database"


def init_app(app: Flask, settings: Settings) -> None:
    """Register ``/metrics`` with a registry of this app's own (tests build many apps)."""
    registry = CollectorRegistry(auto_describe=False)
    # Looked up per scrape, so a test may swap the app's session factory.
    sessions = lambda: app.extensions["gigco_sessions"]()  # noqa: E731
    collector = DatabaseCollector(sessions, settings)
    registry.register(collector)
    app.extensions[_COLLECTOR] = collector
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    app.extensions[_REGISTRY] = registry
    app.register_blueprint(blp)


def _scraper() -> bool:
    """True when the request carries the scrape token or the operator's."""
    settings: Settings = current_app.config["GIGCO"]
    sent = request.headers.get("Authorization", "").encode()
    return any(
        token and hmac.compare_digest(sent, f"Bearer {token}".encode())
        for token in (settings.metrics_token, settings.admin_token)
    )


@blp.get("/metrics")
def metrics() -> Response:
    """The Prometheus exposition (OpenMetrics when the scraper asks for it), for the scrape
    token or the operator."""
    if not _scraper():
        return Response(
            "Send the scrape token: Authorization: Bearer <GIGCO_METRICS_TOKEN>.\n",
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="gigco metrics"'},
            content_type="text/plain",
        )
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(current_app.extensions[_REGISTRY]), content_type=content_type)
