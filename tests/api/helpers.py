"""Helpers of the API tests: raw JSON, and the error-shape check."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

RowCounts = Callable[[], dict[str, int]]


def send_json(
    client: FlaskClient,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """Send ``body`` serialised by ``json.dumps`` (which, unlike a strict client, writes NaN)."""
    return client.open(
        path,
        method=method,
        data=json.dumps(body),
        content_type="application/json",
        headers=headers or {},
    )


def assert_error(response: TestResponse, code: int, *fields: str) -> dict[str, Any]:
    """The response is an error in the house shape, naming exactly ``fields`` when given."""
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"].endswith(".")
    if fields:
        assert sorted(body["errors"]) == sorted(fields), body
        assert all(body["errors"][f] for f in fields)
    return body
