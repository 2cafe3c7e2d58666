"""The HTTP API: ``create_app`` builds the Flask app; one blueprint per resource."""

from __future__ import annotations

import logging

from flask import Flask

from gigco.config import ConfigError, Settings, load_settings
from gigco.db import engine_for, session_factory
from gigco.tasks import configure as configure_celery
from gigco.web.db import close_session
from gigco.web.errors import GigcoApi, register_error_handlers
from gigco.web.resources.accounts.routes import blp as accounts_blp
from gigco.web.resources.categories.routes import blp as categories_blp
from gigco.web.resources.health.routes import blp as health_blp
from gigco.web.resources.jobs.routes import blp as jobs_blp
from gigco.web.resources.notifications.routes import blp as notifications_blp
from gigco.web.resources.opportunities.routes import blp as opportunities_blp
from gigco.web.resources.payments.routes import blp as payments_blp
from gigco.web.resources.reviews.routes import blp as reviews_blp
from gigco.web.resources.signals.routes import blp as signals_blp

MAX_BODY_BYTES = 64 * 1024

BLUEPRINTS = (
    health_blp,
    accounts_blp,
    categories_blp,
    jobs_blp,
    signals_blp,
    opportunities_blp,
    reviews_blp,
    payments_blp,
    notifications_blp,
)


def create_app(settings: Settings | None = None) -> Flask:
    """The GigCo API for ``settings`` (from the environment when None)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as error:
            raise SystemExit(f"gigco: {error}") from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = Flask("gigco")
    app.config.update(
        GIGCO=settings,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE="GigCo",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="v1/openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "info": {"description": "GigCo: post jobs, match workers, pay, review."},
        },
    )
    app.extensions["gigco_sessions"] = session_factory(engine_for(settings.database_url))
    configure_celery(settings)
    api = GigcoApi(app)
    app.extensions["gigco_api"] = api
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    register_error_handlers(app)
    app.teardown_appcontext(close_session)
    return app
