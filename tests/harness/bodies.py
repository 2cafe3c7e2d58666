"""Request bodies: one builder per resource, valid unless told otherwise."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from typing import Any

_ids = itertools.count(1)
MISSING: Any = object()  # as a change, removes the field
BERLIN = {"lat": 52.52, "lng": 13.405}


def future(hours: float = 48) -> str:
    """An ISO time ``hours`` from now."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


def _apply(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**body, **changes}.items() if v is not MISSING}


def unique_email(prefix: str) -> str:
    """An email address no other run or test uses."""
    return f"{prefix}{next(_ids)}-{time.time_ns()}@example.com"


def consumer_body(**changes: Any) -> dict[str, Any]:
    """A consumer's sign-up with a unique email."""
    n = next(_ids)
    return _apply({"name": f"Consumer {n}", "email": unique_email("c")}, changes)


def worker_body(**changes: Any) -> dict[str, Any]:
    """A worker's sign-up near Berlin with plumbing skills and a 25 km radius."""
    n = next(_ids)
    body = {
        "name": f"Worker {n}",
        "email": unique_email("w"),
        "skills": ["plumbing"],
        "location": dict(BERLIN),
        "service_radius_km": 25,
    }
    return _apply(body, changes)


def job_body(*, start: dt.datetime | None = None, **changes: Any) -> dict[str, Any]:
    """A plumbing job in Berlin starting in two days (or at ``start``), for 2 hours."""
    body = {
        "title": "Fix the sink",
        "description": "It drips.",
        "category": "plumbing",
        "location": {"lat": 52.53, "lng": 13.41},
        "scheduled_start": start.isoformat() if start else future(),
        "estimated_hours": 2,
    }
    return _apply(body, changes)


def hostile_bodies(size: int = 64 * 1024 - 64) -> dict[str, bytes]:
    """Bodies of about ``size`` bytes that once cost a parser far more than their size.

    Each is refused with a 4xx: not JSON, too deep, a number too long to read, or valid
    JSON of a shape no endpoint takes (a top-level string, array or number).
    """
    n = size
    return {
        # The old string regex backtracked quadratically on these (12 s at 64 KiB).
        "escaped-quote-run": b'"' + b'\\"' * (n // 2),
        "escaped-quote-run-in-a-field": b'{"name": "' + b'\\"' * (n // 2 - 8),
        "backslash-run": b'"' + b"\\" * n,
        "unicode-escape-run": b'"' + b"\\u0000" * (n // 6) + b'"',
        "deep-arrays": b"[" * n,
        "deep-objects": b'{"a":' * (n // 5),
        "deep-closed-arrays": b"[" * (n // 2) + b"]" * (n // 2),
        "digit-run": b"1" * n,
        "digit-run-float": b"0." + b"1" * n,
        "digit-run-exponent": b"1e" + b"1" * n,
        "integer-4301-digits": b'{"name": ' + b"9" * 4301 + b"," + b" " * (n - 4400) + b"}",
        "long-string": b'"' + b"a" * n + b'"',
        "long-unterminated-string": b'"' + b"a" * n,
        "invalid-utf8": b'"' + b"\xff" * n + b'"',
        "many-small-arrays": b"[" + b"[]," * (n // 3) + b"[]]",
        "many-keys": b"{" + b",".join(b'"k%d": 1' % i for i in range(n // 12)) + b"}",
        "many-numbers": b"[" + b"1," * (n // 2 - 1) + b"1]",
        "many-strings-in-a-field": b'{"skills": [' + b'"a",' * (n // 4 - 4) + b'"a"]}',
        "whitespace-run": b" " * n,
    }
