"""The HTTP API: ``create_app`` builds the Flask app; one blueprint per resource."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, abort, has_request_context, request, send_from_directory
from flask_smorest import abort as abort_with
from swagger_ui_bundle import swagger_ui_path

from gigco import logs, tracing
from gigco.config import ConfigError, Settings, load_settings
from gigco.db import engine_for, session_factory
from gigco.tasks import configure as configure_celery
from gigco.web import body as body_parser
from gigco.web import connection, limits, metrics, ops
from gigco.web.body import MAX_BODY_BYTES, MAX_JSON_DEPTH
from gigco.web.db import REPLICA_SESSIONS, close_session
from gigco.web.errors import GigcoApi, register_error_handlers
from gigco.web.ids import RowIdConverter
from gigco.web.resources.accounts.routes import blp as accounts_blp
from gigco.web.resources.actions.routes import blp as actions_blp
from gigco.web.resources.categories.routes import blp as categories_blp
from gigco.web.resources.disputes.routes import blp as disputes_blp
from gigco.web.resources.health.routes import blp as health_blp
from gigco.web.resources.jobs.routes import blp as jobs_blp
from gigco.web.resources.notifications.routes import blp as notifications_blp
from gigco.web.resources.opportunities.routes import blp as opportunities_blp
from gigco.web.resources.payments.routes import blp as payments_blp
from gigco.web.resources.policies.routes import blp as policies_blp
from gigco.web.resources.reviews.routes import blp as reviews_blp
from gigco.web.resources.test_clocks.routes import blp as test_clocks_blp
from gigco.web.resources.webhooks.routes import blp as webhooks_blp
from gigco.web.schemas import CommonErrorsPlugin

__all__ = ["MAX_BODY_BYTES", "MAX_JSON_DEPTH", "create_app"]

log = logging.getLogger(__name__)

BLUEPRINTS = (
    health_blp,
    accounts_blp,
    categories_blp,
    jobs_blp,
    actions_blp,
    opportunities_blp,
    reviews_blp,
    payments_blp,
    disputes_blp,
    policies_blp,
    notifications_blp,
    webhooks_blp,
)


def _swagger_ui_asset(filename: str) -> Response:
    """A file of Swagger UI's distribution (JS, CSS), for /docs."""
    return send_from_directory(swagger_ui_path, filename, max_age=86400)


def create_app(settings: Settings | None = None) -> Flask:
    """The GigCo API for ``settings`` (from the environment when None)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as error:
            # Exit status 3 is gunicorn's "worker failed to boot": it stops, rather than
            # booting workers that fail the same way forever.
            print(f"gigco: {error}", file=sys.stderr)  # noqa: T201 logging is not set up yet
            raise SystemExit(3) from None
    logs.configure_logging(
        settings.log_level, context=request_log_context, secrets=[settings.admin_token]
    )
    try:
        # Before any connection is opened, so that every connection is traced.
        tracing.setup(settings, service="gigco-api")
    except ConfigError as error:
        print(f"gigco: {error}", file=sys.stderr)  # noqa: T201 as above
        raise SystemExit(3) from None
    app = Flask("gigco")
    tracing.instrument_app(app)  # before our request hooks, so that the span covers them
    app.config.update(
        GIGCO=settings,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE="GigCo",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="v1/openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI's assets are served from the swagger-ui-bundle package: /docs works
        # offline and loads nothing from a CDN.
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "info": {
                "description": (
                    "GigCo: post jobs, match workers, pay, review. Rate limited per caller "
                    "(sign-ups per client address): past a limit, 429 with Retry-After, "
                    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (seconds) and "
                    "RateLimit-Policy."
                )
            },
        },
    )
    timeouts = {
        "statement_timeout_ms": settings.db_statement_timeout_ms,
        "lock_timeout_ms": settings.db_lock_timeout_ms,
    }
    app.extensions["gigco_sessions"] = session_factory(
        engine_for(settings.database_url, **timeouts)
    )
    app.extensions["gigco_read_sessions"] = session_factory(
        engine_for(settings.database_url, autocommit=True, **timeouts)
    )
    if settings.read_database_url:  # views marked reads_replica read there (gigco.web.db)
        app.extensions[REPLICA_SESSIONS] = session_factory(
            engine_for(settings.read_database_url, autocommit=True, replica=True, **timeouts)
        )
    configure_celery(settings)
    app.url_map.converters["id"] = RowIdConverter
    api = GigcoApi(app, spec_kwargs={"extra_plugins": [CommonErrorsPlugin()]})
    app.extensions["gigco_api"] = api
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    if settings.test_clocks:  # off: its paths answer 404, and the spec does not show them
        api.register_blueprint(test_clocks_blp)
        log.warning("test clocks are on (GIGCO_TEST_CLOCKS=1): a sandbox, not for production")
    register_error_handlers(app)
    app.add_url_rule("/docs/assets/<path:filename>", "swagger_ui_assets", _swagger_ui_asset)
    # Before the body is read: a flood of refused bodies is counted too.
    limits.init_app(app, settings)
    app.before_request(_check_body)
    app.teardown_appcontext(close_session)
    # What a refused request left of its body is read, or its connection closed, so that the
    # client's next request on the connection is served.
    app.after_request(connection.drain_unread_body)
    app.wsgi_app = connection.CloseUnreadConnections(app.wsgi_app)  # type: ignore[method-assign]
    ops.init_app(app, settings)  # the operators' console under /ops
    metrics.init_app(app, settings)  # GET /metrics for Prometheus
    return app


def request_log_context() -> Mapping[str, Any]:
    """The request's method, path and job id, for log lines made while serving it."""
    if not has_request_context():
        return {}
    job_id = (request.view_args or {}).get("job_id")
    return {"method": request.method, "path": request.path, "job_id": job_id}


def _check_body() -> None:
    """A body that is not JSON is a 415 (not a 422 per field); one we cannot read is a 400.

    The body is parsed here, once, in linear time (``gigco.web.body``); webargs reads that.
    """
    if request.blueprint == "ops":  # the operators' console posts HTML forms
        return
    chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if not (request.content_length or chunked):
        return
    if not request.is_json:
        abort(415)
    # Reading the body here also enforces MAX_CONTENT_LENGTH (413) on every endpoint.
    body = request.get_data(cache=True)
    # Werkzeug stops a body of unknown length (chunked) at the limit without a word; a byte
    # left beyond it means the body was too large, not that it was cut short.
    if chunked and len(body) >= MAX_BODY_BYTES and request.environ["wsgi.input"].read(1):
        abort(413)
    try:
        body_parser.remember(body_parser.parse_body(body))
    except body_parser.BodyError as error:
        abort_with(400, message=str(error))
