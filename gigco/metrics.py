"""Prometheus metrics: what the database knows at scrape time, and what workers observe.

Two kinds, exported from two places:

- ``DatabaseCollector`` runs a few GROUP BYs when the API's ``/metrics`` is scraped: jobs
  per status, history events per type, jobs overdue. PostgreSQL is the source of truth, so
  every API process (and every replica) answers the same, with no shared state.
- ``TIMER_LATENESS`` and ``SWEEP_DURATION`` are histograms observed inside Celery tasks.
  The worker serves them itself on ``--metrics-port`` (see ``gigco.tasks.app``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from gigco.config import Settings
from gigco.db import utcnow
from gigco.lifecycle.history import lock_job
from gigco.models import Job, JobEvent, JobStatus

# A deadline should fire within a second; after a broker loss, within a sweep plus grace.
TIMER_LATENESS = Histogram(
    "gigco_timer_lateness_seconds",
    "Seconds between a job's deadline (timer_at) and the task that acted on it.",
    ["step"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
SWEEP_DURATION = Histogram(
    "gigco_sweep_duration_seconds",
    "How long one beat sweep (due timers plus stuck steps) took.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

WEBHOOK_DELIVERIES = Counter(
    "gigco_webhook_attempts",
    "Webhook delivery attempts by what they came to: delivered, retry, failed, disabled, lost.",
    ["outcome"],
)
WEBHOOK_LAG = Histogram(
    "gigco_webhook_delivery_lag_seconds",
    "Seconds from a webhook message being written (with its event) to its delivery.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000, 86400),
)


# --- timer lateness, measured around a task's step --------------------------------------


def due_timer(session: Session, job_id: int, now: dt.datetime) -> dt.datetime | None:
    """The job's deadline if it is due at ``now``, row-locked; None when nothing is due.

    The lock (the step that fires the timer takes the same one, without a second round
    trip) makes a duplicate delivery of the same timer wait, then see the deadline already
    moved, so it is counted once.
    """
    job = lock_job(session, job_id)
    if job is None or job.timer_at is None or job.timer_at > now:
        return None
    return job.timer_at


def timer_fired(session: Session, job_id: int, due: dt.datetime | None) -> bool:
    """True when the step just run consumed deadline ``due`` (the job's timer moved on).

    The job is still locked and loaded, and every change to it goes through the session,
    so the loaded row is current.
    """
    if due is None:
        return False
    job = session.get(Job, job_id)
    return job is not None and job.timer_at != due


# --- what the database knows, at scrape time --------------------------------------------


class DatabaseCollector(Collector):
    """Jobs per status, events per type and overdue jobs, read from PostgreSQL per scrape."""

    def __init__(self, sessions: Callable[[], Session], settings: Settings):
        self.sessions = sessions
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        """Four queries: two GROUP BYs and two counts over the deadline indexes."""
        now = utcnow()
        grace = dt.timedelta(seconds=self.settings.stuck_step_grace_seconds)
        with self.sessions() as session:
            by_status = dict(
                session.execute(sa.select(Job.status, sa.func.count()).group_by(Job.status)).all()
            )
            events = session.execute(
                sa.select(
                    JobEvent.type, JobEvent.from_status, JobEvent.to_status, sa.func.count()
                ).group_by(JobEvent.type, JobEvent.from_status, JobEvent.to_status)
            ).all()
            timers = session.scalar(
                sa.select(sa.func.count()).where(Job.timer_at.is_not(None), Job.timer_at < now)
            )
            steps = session.scalar(
                sa.select(sa.func.count()).where(
                    Job.step_due_at.is_not(None),
                    Job.step_due_at < now - grace,
                )
            )
        jobs = GaugeMetricFamily("gigco_jobs", "Jobs per status.", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], by_status.get(status, 0))
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
        for type_, from_, to, count in events:
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


# --- the worker's own exporter ----------------------------------------------------------


def worker_registry() -> CollectorRegistry:
    """The registry a worker serves: multiprocess-aggregated when PROMETHEUS_MULTIPROC_DIR is
    set (the prefork pool), else this process's own (threads, solo, gevent pools)."""
    registry = CollectorRegistry()
    try:
        MultiProcessCollector(registry)
    except ValueError:  # PROMETHEUS_MULTIPROC_DIR is not set: one process holds it all
        return REGISTRY
    return registry


def serve(port: int, address: str) -> tuple[WSGIServer, threading.Thread]:
    """Serve the worker's metrics on ``address:port`` from a daemon thread."""
    return start_http_server(port, addr=address, registry=worker_registry())
