"""OpenTelemetry tracing: one trace from an HTTP request to the SQL of the steps it caused.

Off unless the settings turn it on (``GIGCO_TRACING``, or an ``OTEL_EXPORTER_OTLP_ENDPOINT``;
docs/ops.md "Tracing"). When off, nothing of OpenTelemetry is imported or installed.

When on, the official instrumentations trace Flask requests (``instrument_app``), Celery
publishes and task runs (the trace context travels in the message headers, so a step run
by a worker continues the trace of the request that made it due), PostgreSQL statements
(psycopg2, under SQLAlchemy: its own instrumentation does not support SQLAlchemy 2.1) and
Redis commands; log lines made inside a span carry its ``trace_id`` and ``span_id``.

A due step is published after its transaction commits (``gigco.db.enqueue_after_commit``):
in a view, or in a task body, so the request's (or the task's) span is still current then
and the publish span is its child; tests/test_tracing.py shows the whole chain.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gigco import logs
from gigco.config import ConfigError, Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

# Health probes and scrapes come every few seconds and say nothing about a request.
EXCLUDED_URLS = "/livez,/readyz,/healthz,/metrics"

_provider: TracerProvider | None = None


def enabled() -> bool:
    """True once ``setup`` has installed the instrumentations in this process."""
    return _provider is not None


def setup(
    settings: Settings,
    *,
    service: str,
    provider: TracerProvider | None = None,
) -> bool:
    """Install the Celery, psycopg2 and Redis instrumentations, once per process.

    Does nothing (returns False) when ``settings.tracing`` is off and no ``provider`` is
    given. Spans go over OTLP/HTTP to ``settings.tracing_endpoint`` under the service name
    ``service`` (``OTEL_SERVICE_NAME`` overrides it), or to ``provider`` when one is given
    (tests). Database connections opened before this call are not traced: call it before
    the first connection (and after a fork).
    """
    global _provider
    if _provider is not None:
        return True
    if provider is None and not settings.tracing:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
    except ImportError as error:
        raise ConfigError(
            "tracing is on (GIGCO_TRACING or OTEL_EXPORTER_OTLP_ENDPOINT) but OpenTelemetry "
            f"is not installed ({error.name}): pip install 'gigco[tracing]'"
        ) from None
    if provider is None:
        name = settings.tracing_service_name or service
        provider = _otlp_provider(settings.tracing_endpoint, name)
        trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    Psycopg2Instrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    logs.correlate(span_ids)
    _provider = provider
    log.info("tracing on", extra={"service": service})
    return True


def _otlp_provider(endpoint: str, service: str) -> TracerProvider:
    """A provider exporting to ``endpoint`` in batches over OTLP/HTTP."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def instrument_app(app: Any) -> None:
    """Trace ``app``'s requests when tracing is on; call it before registering any hook."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls=EXCLUDED_URLS)


def span_ids() -> Mapping[str, str]:
    """The current span's ``trace_id`` and ``span_id`` in hex, or nothing outside a span."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


def uninstall() -> None:
    """Flush the spans and remove the instrumentations (tests; apps already instrumented stay)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _provider.force_flush()
    for instrumentor in (CeleryInstrumentor(), Psycopg2Instrumentor(), RedisInstrumentor()):
        instrumentor.uninstrument()
    logs.correlate(None)
    _provider = None
