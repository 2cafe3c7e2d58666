"""Tracing (gigco.tracing): one trace from an HTTP request to the SQL of the step it caused.

The worker is real: a Celery worker (solo pool) in a thread of this process, on the run's
Redis, consuming a steps queue of its own (the run's live worker never sees these tasks),
so that its spans reach the same in-memory exporter as the request's.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from kombu import Queue
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gigco import logs, tracing
from gigco.config import Settings, load_settings
from gigco.tasks import configure
from gigco.tasks.names import is_step_task
from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import Api
from tests.harness.polling import wait_for


@pytest.fixture
def spans(settings: Settings) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, every span kept in memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert tracing.setup(settings, service="gigco-test", provider=provider)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


@pytest.fixture
def traced_settings(settings: Settings) -> Settings:
    """The run's settings on an engine of their own, whose connections are all traced."""
    return settings.replace(database_url=f"{settings.database_url}?application_name=tracing")


@pytest.fixture
def traced_api(
    spans: InMemorySpanExporter, traced_settings: Settings, settings: Settings, committed: None
) -> Iterator[Api]:
    """The API, and a real worker in this process on a steps queue that the run's live
    worker never reads."""
    from gigco.web import create_app

    api = Api(create_app(traced_settings).test_client(), ADMIN_TOKEN)
    app = configure(traced_settings)
    queue = f"tracing-{uuid.uuid4().hex[:8]}"
    saved = {k: app.conf[k] for k in ("task_queues", "task_default_queue")}
    app.conf.update(task_queues=(Queue(queue),), task_default_queue=queue)
    app.__dict__.pop("amqp", None)  # its queue declarations were made from the old settings
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield api
    finally:
        app.conf.update(saved)
        app.__dict__.pop("amqp", None)
        configure(settings)


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def test_one_trace_runs_from_the_http_post_through_the_step_to_its_sql(
    spans: InMemorySpanExporter, traced_api: Api
) -> None:
    api = traced_api
    consumer = api.consumer()
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logs.KeyValueFormatter())
    task_log = logging.getLogger("gigco.tasks")
    task_log.addHandler(handler)
    level = task_log.level
    task_log.setLevel(logging.INFO)
    try:
        spans.clear()
        job = api.post_job(consumer)

        def step_runs() -> list[ReadableSpan]:
            return [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]

        wait_for(step_runs, timeout=15, what="the worker to run the job's first step")
    finally:
        task_log.removeHandler(handler)
        task_log.setLevel(level)

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (http,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert http.name == "POST /v1/jobs"
    trace_id = http.context.trace_id

    # The publish, after the view's commit, is a child of the request's span…
    (publish,) = [s for s in finished if s.kind is SpanKind.PRODUCER]
    assert is_step_task(publish.attributes["celery.task_name"])
    assert http in _ancestors(publish, by_id)
    # …the worker's run of that step continues it, through the message's headers…
    (run,) = [s for s in finished if s.kind is SpanKind.CONSUMER]
    assert run.name == f"run/{publish.attributes['celery.task_name']}"
    assert run.context.trace_id == trace_id
    assert run.parent is not None and run.parent.span_id == publish.context.span_id
    # …and so does the step's SQL, the job's row included.
    step_sql = [
        s
        for s in finished
        if s.attributes and "db.statement" in s.attributes and run in _ancestors(s, by_id)
    ]
    assert step_sql, "no SQL span under the step's run"
    assert all(s.context.trace_id == trace_id for s in step_sql)
    assert any("jobs" in str(s.attributes["db.statement"]) for s in step_sql)
    # The request's own SQL is in the trace too. Outside it are only the worker's broker
    # bookkeeping (polls, acks) in Redis: no SQL, no Celery span.
    assert any(http in _ancestors(s, by_id) for s in finished if s.kind is SpanKind.CLIENT)
    others = [s for s in finished if s.context.trace_id != trace_id]
    assert all(s.attributes["db.system"] == "redis" for s in others), [s.name for s in others]

    # The worker's log line for the step carries the trace id.
    done = [line for line in lines.getvalue().splitlines() if 'msg="step done"' in line]
    assert done and f"job_id={job['id']}" in done[0]
    assert f"trace_id={trace.format_trace_id(trace_id)}" in done[0]


def test_log_lines_carry_the_current_span_ids_while_tracing_is_on(
    spans: InMemorySpanExporter,
) -> None:
    formatter = logs.KeyValueFormatter()
    record = logging.LogRecord("gigco", logging.INFO, __file__, 1, "hello", (), None)
    tracer = trace.get_tracer("tests", tracer_provider=tracing._provider)
    assert "trace_id=" not in formatter.format(record)  # no span, no ids
    with tracer.start_as_current_span("outer") as span:
        line = formatter.format(record)
    context = span.get_span_context()
    assert f"trace_id={trace.format_trace_id(context.trace_id)}" in line
    assert f"span_id={trace.format_span_id(context.span_id)}" in line
    tracing.uninstall()
    with tracer.start_as_current_span("after"):
        assert "trace_id=" not in formatter.format(record)  # tracing off: no ids


def test_tracing_is_off_unless_turned_on() -> None:
    base = {"GIGCO_DATABASE_URL": "postgresql://db/gigco", "GIGCO_BROKER_URL": "redis://r/0"}
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert not load_settings(base).tracing
    on = load_settings({**base, **endpoint})
    assert on.tracing and on.tracing_endpoint == "http://collector:4318/v1/traces"
    traces = {**endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/t"}
    assert load_settings({**base, **traces}).tracing_endpoint == "http://other:4318/t"
    assert load_settings({**base, "GIGCO_TRACING": "1"}).tracing
    assert not load_settings({**base, **endpoint, "GIGCO_TRACING": "0"}).tracing
    named = load_settings({**base, "GIGCO_TRACING": "1", "OTEL_SERVICE_NAME": "api-eu"})
    assert named.tracing_service_name == "api-eu"
    with pytest.raises(Exception, match="GIGCO_TRACING must be true or false"):
        load_settings({**base, "GIGCO_TRACING": "maybe"})


def test_nothing_of_opentelemetry_is_loaded_when_tracing_is_off(
    test_env: dict[str, str],
) -> None:
    """The API and the worker's modules, built and imported with tracing off, in a fresh
    interpreter: GigCo imports no OpenTelemetry module, so it costs nothing. (redis-py 8
    imports OpenTelemetry's API and metrics SDK for its own observability whenever it is
    installed; those are loaded first and left out.)"""
    probe = (
        "import sys\n"
        "import redis\n"
        "theirs = {m for m in sys.modules if m.startswith('opentelemetry')}\n"
        "from gigco.web import create_app\n"
        "from gigco.tasks.app import start_tracing\n"
        "from gigco import tracing\n"
        "create_app()\n"
        "assert not start_tracing('gigco-worker') and not tracing.enabled()\n"
        "ours = {m for m in sys.modules if m.startswith('opentelemetry')} - theirs\n"
        "loaded = sorted(ours)\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in test_env.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_worker_starts_tracing_where_its_tasks_run(test_env: dict[str, str]) -> None:
    """Prefork: in each child after the fork, not in the parent; threads: in the worker."""
    probe = (
        "from types import SimpleNamespace as NS\n"
        "from gigco import tracing\n"
        "import importlib\n"
        "tasks = importlib.import_module('gigco.tasks.app')\n"
        "tasks._trace_worker(NS(pool_cls='prefork'))\n"
        "assert not tracing.enabled(), 'the prefork parent must not trace'\n"
        "tasks._fresh_connections_after_fork()\n"
        "assert tracing.enabled(), 'a prefork child traces'\n"
        "tracing.uninstall()\n"
        "tasks._trace_worker(NS(pool_cls='threads'))\n"
        "assert tracing.enabled(), 'a threads worker traces'\n"
        "tracing.uninstall()\n"
    )
    # Port 9 (discard): nothing is exported in this probe, and nothing could be received.
    env = {**test_env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
