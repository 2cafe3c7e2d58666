"""Prometheus metrics the workers observe, and the worker's exporter; they only collect.

``TIMER_LATENESS`` and ``SWEEP_DURATION`` are histograms observed inside Celery tasks
(``gigco.tasks.base``, ``gigco.tasks.sweeps``); the worker serves them itself on
``--metrics-port`` (see ``gigco.tasks.app``). What the database knows is read at scrape
time by the API (``gigco.web.metrics``).
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

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

PUBLISH_FAILURES = Counter(
    "gigco_publish_failures",
    "Task messages the broker refused or never confirmed; each was skipped, the rest of its "
    "batch sent (a sweep sends it again next time).",
    ["queue"],
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

# A rolling deploy: messages of a newer schema a worker sent back to the queue (gigco.tasks.schema).
TASKS_DEFERRED = Counter(
    "gigco_task_messages_deferred",
    "Task messages of a schema this worker does not understand, sent back to the queue.",
    ["task", "schema"],
)


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
