"""Schemas shared by every resource: strict, storable input, a location, and the error envelope."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

import marshmallow as ma
from apispec import BasePlugin
from marshmallow import fields, validate

# What any request may get, whichever the endpoint: a body that is not valid JSON or nests
# too deeply (400), one over 64 KiB (413) or not JSON at all (415), a rate limit met (429),
# the database down (503).
COMMON_ERRORS = (400, 413, 415, 429, 503)
UNSTORABLE = "Must not contain NUL characters or unpaired surrogates."

F = TypeVar("F", bound=Callable[..., Any])


def _unstorable(value: Any) -> bool:
    """True for text PostgreSQL cannot store (NUL, a lone surrogate), anywhere in ``value``."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, Mapping):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_unstorable(v) for v in value)
    return False


class StorableTextSchema(ma.Schema):
    """Text that PostgreSQL would refuse (NUL, lone surrogates) is a 422 naming the field."""

    @ma.pre_load
    def _storable_text(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        keys = [field.data_key or name for name, field in self.load_fields.items()]
        bad = {key: [UNSTORABLE] for key in keys if key in data and _unstorable(data[key])}
        if bad:
            raise ma.ValidationError(bad)
        return data


class StrictSchema(StorableTextSchema):
    """Unknown fields are errors, not silently dropped; text must be storable."""

    class Meta:
        unknown = ma.RAISE


class LocationSchema(StrictSchema):
    """A point on Earth."""

    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)
    lng = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)


class ErrorSchema(ma.Schema):
    """Every error: ``{code, status, message, errors?}``."""

    code = fields.Integer(metadata={"description": "HTTP status code"})
    status = fields.String(metadata={"description": "HTTP reason phrase"})
    message = fields.String(metadata={"description": "What went wrong, for a person"})
    errors = fields.Dict(metadata={"description": "Field name to messages (validation only)"})
    current_status = fields.String(metadata={"description": "The job's status (409 only)"})


def errors(blp: Any, *codes: int) -> Callable[[F], F]:
    """Document the error responses ``codes`` of a view in the OpenAPI spec."""

    def decorator(view: F) -> F:
        for code in codes:
            view = blp.alt_response(code, schema=ErrorSchema, description="Error")(view)
        return view

    return decorator


class CommonErrorsPlugin(BasePlugin):
    """Documents ``COMMON_ERRORS`` on every operation, so no view can forget them."""

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        """Add each common error response the operation does not declare itself."""
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for code in COMMON_ERRORS:
                if code not in responses and str(code) not in responses:
                    responses[str(code)] = HTTPStatus(code).name
