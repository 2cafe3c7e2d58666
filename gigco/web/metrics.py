"""``GET /metrics`` for Prometheus: database-derived series plus this process's own."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from gigco.config import Settings
from gigco.metrics import DatabaseCollector

blp = Blueprint("metrics", __name__)

_REGISTRY = "gigco_metrics_registry"


def init_app(app: Flask, settings: Settings) -> None:
    """Register ``/metrics`` with a registry of this app's own (tests build many apps)."""
    registry = CollectorRegistry(auto_describe=False)
    # Looked up per scrape, so a test may swap the app's session factory.
    sessions = lambda: app.extensions["gigco_sessions"]()  # noqa: E731
    registry.register(DatabaseCollector(sessions, settings))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    app.extensions[_REGISTRY] = registry
    app.register_blueprint(blp)


@blp.get("/metrics")
def metrics() -> Response:
    """The Prometheus exposition (OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(current_app.extensions[_REGISTRY]), content_type=content_type)
