"""One error envelope for everything: ``{code, status, message, errors?}``.

Domain errors carry no HTTP code; ``HTTP_STATUS`` maps each class to its status here.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.pagination import PaginationMetadataSchema
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from werkzeug.exceptions import HTTPException

from gigco.lifecycle.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from gigco.web.schemas import ErrorSchema

log = logging.getLogger(__name__)

_LOCATIONS = ("json", "query", "headers", "form", "files", "view_args", "path")

DEFAULT_MESSAGES = {
    400: "The request body is not valid JSON.",
    401: "Send a valid bearer token in the Authorization header.",
    403: "You may not do that.",
    404: "Not found.",
    405: "This method is not allowed on this path.",
    409: "The request conflicts with the current state.",
    413: "The request body is larger than 64 KiB.",
    415: "Send the body as application/json.",
    422: "Some fields are invalid; see errors.",
    500: "Something went wrong on our side.",
    503: "The service is temporarily unavailable; try again shortly.",
}


class Unauthorized(DomainError):
    """No token, or one we do not know."""


# The most specific class in an error's MRO wins; DomainError itself is a plain 400.
HTTP_STATUS: dict[type[DomainError], int] = {
    DomainError: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
}
HTTP_HEADERS: dict[type[DomainError], dict[str, str]] = {
    Unauthorized: {"WWW-Authenticate": 'Bearer realm="gigco"'},
}


def http_status(error: DomainError) -> int:
    """The HTTP status of a domain error."""
    return next(HTTP_STATUS[c] for c in type(error).__mro__ if c in HTTP_STATUS)


UNMIGRATED_PGCODES = {"42P01", "42703"}  # undefined_table, undefined_column
NOT_MIGRATED = (
    "The database is not migrated to this version of GigCo (run `gigco db upgrade`); "
    "GET /healthz names the pending migration."
)


def envelope(code: int, message: str | None = None, errors: Any = None, **extra: Any) -> dict:
    """The JSON body of an error response."""
    body: dict[str, Any] = {
        "code": code,
        "status": HTTPStatus(code).phrase,
        "message": message or DEFAULT_MESSAGES.get(code) or HTTPStatus(code).description,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def _dotted(errors: dict[Any, Any], prefix: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for key, value in errors.items():
        # A nested field of the wrong type ({"location": "here"}) is named as the field itself.
        name = prefix[:-1] if key == "_schema" and prefix else f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{name}."))
        else:
            flat.setdefault(name, []).extend(value if isinstance(value, list) else [str(value)])
    return flat


def _flatten(errors: Any) -> Any:
    """``{"json": {"location": {"lat": [...]}}}`` becomes ``{"location.lat": [...]}``."""
    if not isinstance(errors, dict) or not errors:
        return errors
    if set(errors) <= set(_LOCATIONS):
        merged: dict[str, Any] = {}
        for value in errors.values():
            merged.update(value if isinstance(value, dict) else {"_body": value})
        errors = merged
    return _dotted(errors)


class GigcoApi(Api):
    """flask-smorest's Api with GigCo's error envelope."""

    ERROR_SCHEMA = ErrorSchema

    def _register_pagination_header(self) -> None:
        # flask-smorest documents X-Pagination with "schema", which in OpenAPI means a
        # comma-separated ("simple" style) value; the header is JSON, which "content" says.
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata, as JSON",
                "content": {"application/json": {"schema": PaginationMetadataSchema}},
            },
            lazy=True,
        )

    def handle_http_exception(self, error: HTTPException) -> tuple[dict, int, dict]:
        """Every HTTP error as ``{code, status, message, errors?}``."""
        code = error.code or 500
        data = getattr(error, "data", None) or {}
        errors = _flatten(data.get("errors") or data.get("messages"))
        message = data.get("message")
        if code == 400 and not message:
            message = DEFAULT_MESSAGES[400]
        elif code != 422 and not message:
            message = DEFAULT_MESSAGES.get(code) or error.description
        # Keep what the exception itself says in headers (405's Allow), but not its HTML type.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return (
            envelope(code, message, errors if code in (400, 422) else None),
            code,
            {**headers, **(data.get("headers") or {})},
        )


def register_error_handlers(app: Flask) -> None:
    """Map domain and database errors to HTTP in one place."""

    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> tuple[dict, int, dict[str, str]]:
        status = http_status(error)
        body = envelope(status, error.message, error.errors, **error.extra)
        return body, status, HTTP_HEADERS.get(type(error), {})

    @app.errorhandler(IntegrityError)
    def _integrity(error: IntegrityError) -> tuple[dict, int]:
        log.info("integrity conflict: %s", error.orig)
        return envelope(409, "This conflicts with data that already exists."), 409

    @app.errorhandler(DataError)
    def _out_of_range(error: DataError) -> tuple[dict, int]:
        # A value the schemas let through that PostgreSQL cannot hold (say, past bigint).
        log.warning("value refused by the database: %s", error.orig)
        return envelope(422, "A value in the request is out of range."), 422

    @app.errorhandler(OperationalError)
    def _unavailable(error: OperationalError) -> tuple[dict, int, dict]:
        log.warning("database unavailable: %s", error.orig)
        return envelope(503), 503, {"Retry-After": "2"}

    @app.errorhandler(ProgrammingError)
    def _not_migrated(error: ProgrammingError) -> tuple[dict, int] | tuple[dict, int, dict]:
        # undefined_table / undefined_column: the schema is behind the code (never migrated,
        # or a deploy ran before `gigco db upgrade`). /healthz names the pending migration.
        if getattr(error.orig, "pgcode", None) not in UNMIGRATED_PGCODES:
            return _unexpected(error)
        log.error("database not migrated: %s", error.orig)
        return envelope(503, NOT_MIGRATED), 503, {"Retry-After": "10"}

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[dict, int]:
        if isinstance(error, HTTPException):
            return app.extensions["gigco_api"].handle_http_exception(error)
        log.exception("unhandled error")
        return envelope(500), 500
