"""A request's JSON body, parsed once in time linear in its size, with a depth limit.

``parse_body`` runs in ``before_request`` (see ``gigco.web._check_body``); what it returns is
kept on ``flask.g`` and handed to webargs by ``BodyParser``, so no view parses again. The
stdlib's C decoder is linear in the body's size; its own recursion guard turns very deep
nesting into a ``RecursionError`` long before the stack is at risk, and a walk over the
parsed containers (at most one per two bytes) enforces ``MAX_JSON_DEPTH``. There is no
regular expression over the raw bytes: a backtracking one was quadratic on ``"\\"\\"…``.
"""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

MAX_BODY_BYTES = 64 * 1024
# Our bodies nest three levels; deeper ones are refused as a 400 before any schema sees them.
MAX_JSON_DEPTH = 32
_PARSED = "gigco_json_body"


class BodyError(ValueError):
    """The body is not JSON we read; ``str(error)`` is the message for the client."""


def nests_deeper_than(value: Any, limit: int) -> bool:
    """True when arrays and objects in ``value`` nest more than ``limit`` levels."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def parse_body(raw: bytes) -> Any:
    """``raw`` as JSON (UTF-8); raise ``BodyError`` for anything else or anything too deep."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("The request body is not valid JSON: it is not UTF-8.") from None
    too_deep = BodyError(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError as error:
        # JSONDecodeError, and the int() limit: a literal of more than 4,300 digits.
        if isinstance(error, json.JSONDecodeError):
            raise BodyError("The request body is not valid JSON.") from None
        raise BodyError("The request body holds a number too long to read.") from None
    if nests_deeper_than(value, MAX_JSON_DEPTH):
        raise too_deep
    return value


def remember(value: Any) -> None:
    """Keep the request's parsed body for webargs."""
    setattr(flask.g, _PARSED, value)


class BodyParser(FlaskParser):
    """webargs' Flask parser, reading the body ``_check_body`` already parsed."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        if hasattr(flask.g, _PARSED):
            return getattr(flask.g, _PARSED)
        return super()._raw_load_json(req)  # no body was sent: webargs says why


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose arguments come from the body parsed once."""

    ARGUMENTS_PARSER = BodyParser()
