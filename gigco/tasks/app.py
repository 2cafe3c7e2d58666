"""The Celery app, configured from GIGCO_* settings; nothing connects at import time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import click
from celery import Celery, bootsteps, concurrency, current_task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    beat_init,
    worker_init,
    worker_process_init,
)

from gigco import logs, metrics, tracing
from gigco.config import Settings
from gigco.tasks import (
    flower,
    schema,  # noqa: F401 - importing stamps every published message
)
from gigco.tasks import runtime as rt
from gigco.tasks.celery_settings import celery_settings
from gigco.tasks.names import is_step_task
from gigco.tasks.routine_logs import quiet_the_sweep

log = logging.getLogger(__name__)

app = Celery("gigco")
app.config_from_object("celeryconfig", silent=False, force=False)
flower.apply()  # `celery -A gigco.tasks flower` runs on our settings from any directory


def configure(settings: Settings) -> Celery:
    """Point the app and the task runtime at ``settings`` (web app factory, tests)."""
    previous = app.conf.broker_url
    app.conf.update(celery_settings(settings))
    if previous != settings.broker_url:
        # The producer pool and the queue declarations were built for the old broker.
        app._pool = None
        app.__dict__.pop("amqp", None)
    rt.use_settings(settings)
    return app


@worker_process_init.connect
def _fresh_connections_after_fork(**_: object) -> None:
    rt.runtime().dispose()
    start_tracing("gigco-worker")


# --- tracing (gigco.tracing): in the process that runs the tasks, after any fork ---------


def start_tracing(service: str) -> bool:
    """Start tracing in this worker or beat process when the settings turn it on."""
    return tracing.setup(rt.runtime().settings, service=service)


@worker_init.connect
def _trace_worker(sender: Any, **_: object) -> None:
    # A prefork pool's children start tracing in worker_process_init: the SDK's export
    # thread must be started after the fork (the Celery instrumentation's docs). The solo
    # pool sends worker_process_init too; the threads pool runs tasks in this process.
    if "prefork" not in concurrency.get_implementation(sender.pool_cls).__module__:
        start_tracing("gigco-worker")
    if rt.runtime().settings.test_clocks:
        log.warning("test clocks are on (GIGCO_TEST_CLOCKS=1): a sandbox, not for production")


@beat_init.connect
def _trace_beat(**_: object) -> None:
    start_tracing("gigco-beat")


# --- observability: one-line logs and the worker's metrics endpoint ---------------------


def task_log_context() -> Mapping[str, Any]:
    """The running task's name and id, and its job id for a lifecycle step (args are ids)."""
    task = current_task
    if not task:
        return {}
    context: dict[str, Any] = {"task": task.name, "task_id": task.request.id}
    if is_step_task(task.name) and task.request.args:
        context["job_id"] = task.request.args[0]
    return context


@after_setup_logger.connect
@after_setup_task_logger.connect
def _key_value_logs(logger: logging.Logger, **_: object) -> None:
    formatter = logs.KeyValueFormatter(
        context=task_log_context, secrets=[rt.runtime().settings.admin_token]
    )
    logs.use_formatter(logger.handlers, formatter)
    quiet_the_sweep()


app.user_options["worker"].add(
    click.Option(
        ("--metrics-port",),
        type=int,
        default=None,
        help="Serve this worker's Prometheus metrics on this port (off when not given).",
    )
)
app.user_options["worker"].add(
    click.Option(
        ("--metrics-address",),
        default="0.0.0.0",
        show_default=True,
        help="Address for --metrics-port.",
    )
)


class MetricsExporter(bootsteps.StartStopStep):
    """Serves ``/metrics`` from the worker process when started with ``--metrics-port``."""

    def __init__(
        self,
        parent: Any,
        metrics_port: int | None = None,
        metrics_address: str = "0.0.0.0",
        **options: Any,
    ):
        super().__init__(parent, **options)
        self.port, self.address = metrics_port, metrics_address
        self.server: Any = None

    def start(self, parent: Any) -> None:
        """Start the HTTP exporter thread."""
        if not self.port:
            return
        registry = metrics.worker_registry()
        if registry is metrics.REGISTRY and "prefork" in getattr(parent.pool_cls, "__module__", ""):
            log.warning(
                "worker metrics: the prefork pool observes in child processes; set "
                "PROMETHEUS_MULTIPROC_DIR or use --pool threads, or the histograms stay empty"
            )
        self.server, _ = metrics.serve(self.port, self.address)
        log.info("worker metrics on http://%s:%s/metrics", self.address, self.port)

    def stop(self, parent: Any) -> None:
        """Stop the exporter."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


app.steps["worker"].add(MetricsExporter)
