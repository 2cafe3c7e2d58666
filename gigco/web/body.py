"""A request's JSON body, parsed once in time linear in its size, with a depth limit.

``parse_body`` runs in ``before_request`` (see ``gigco.web._check_body``); what it returns is
kept on ``flask.g`` and handed to webargs by ``BodyParser``, so no view parses again. A single
pass over the bytes (``check_shape``) bounds depth and the number of arrays and objects
before the stdlib's C decoder, linear in the body's size, reads it. A regular expression
over the text would backtrack at every escaped quote: quadratic in a hostile body's size
(docs/benchmarks.md, "Hostile bodies").
"""

from __future__ import annotations

import json
import re
from typing import Any

import flask
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

MAX_BODY_BYTES = 64 * 1024
# Our bodies nest three levels; deeper ones are refused as a 400 before any schema sees them.
MAX_JSON_DEPTH = 32
# Ours hold a few dozen values; a body is refused before parsing when it holds more than
# this many strings, arrays, objects and separators (each costs the schema a check, and a
# 422 an error entry).
MAX_JSON_VALUES = 1024
# A whole string (possessive: never backtracked into), a lone quote that opens none, a
# bracket or a comma. Everything else is skipped by the regex engine, not by Python.
_TOKENS = re.compile(rb'(?P<string>"(?:[^"\\]++|\\.)*+")|(?P<open>")|[\[\]{},]', re.DOTALL)
_PARSED = "gigco_json_body"


class BodyError(ValueError):
    """The body is not JSON we read; ``str(error)`` is the message for the client."""


def check_shape(raw: bytes) -> None:
    """Refuse ``raw`` if its arrays and objects nest too deeply, or it holds too many values.

    One left-to-right pass, at most ``MAX_JSON_VALUES`` + 1 steps in Python: each string is
    skipped whole by one possessive match (never retried, so linear), brackets and commas
    are counted. A quote that opens no complete string means the body is not JSON at all.
    Capping values before parsing keeps a body of thousands of ``[]`` or keys from costing
    as many objects (and a full GC pass), schema checks and error entries.
    """
    depth = 0
    for count, token in enumerate(_TOKENS.finditer(raw), start=1):
        if count > MAX_JSON_VALUES:
            raise BodyError(f"The JSON body holds more than {MAX_JSON_VALUES} values.")
        if token.lastgroup == "open":
            raise BodyError("The request body is not valid JSON.")
        char = token[0][:1]
        if char in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise BodyError(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
        elif char in b"]}":
            depth -= 1


def parse_body(raw: bytes) -> Any:
    """``raw`` as JSON (UTF-8); raise ``BodyError`` for anything else or anything too deep."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("The request body is not valid JSON: it is not UTF-8.") from None
    check_shape(raw)
    try:
        return json.loads(text)
    except ValueError as error:
        # JSONDecodeError, and the int() limit: a literal of more than 4,300 digits.
        if isinstance(error, json.JSONDecodeError):
            raise BodyError("The request body is not valid JSON.") from None
        raise BodyError("The request body holds a number too long to read.") from None


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
