"""The demo's HTTP client: JSON over the standard library's ``urllib``, one-line errors."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

HTTP_TIMEOUT = 10.0


class DemoError(Exception):
    """The demo cannot go on; the message is one line a person can act on."""


class Client:
    """A small JSON client for the GigCo API on ``urllib``."""

    def __init__(self, base_url: str, *, timeout: float = HTTP_TIMEOUT):
        if not base_url.startswith(("http://", "https://")):
            raise DemoError(f"the URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expect: Sequence[int] = (200,),
        timeout: float | None = None,
    ) -> Any:
        """Send one request and return its JSON body; DemoError unless the status is expected."""
        status, answer = self.send(
            method, path, token=token, body=body, headers=headers, timeout=timeout
        )
        if status not in expect:
            message = answer.get("message") if isinstance(answer, dict) else None
            reason = http.client.responses.get(status, "")
            detail = f": {message}" if message else ""
            raise DemoError(f"{method} {path} answered {status} {reason}{detail}".strip())
        return answer

    def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return its status and JSON body (None when not JSON)."""
        request = urllib.request.Request(
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Accept": "application/json", **(headers or {})},
        )
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, _json(error.read())
        except urllib.error.URLError as error:
            raise DemoError(
                f"cannot reach GigCo at {self.base_url}: {_reason(error.reason)}"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise DemoError(f"cannot reach GigCo at {self.base_url}: {_reason(error)}") from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "the server closed the connection"
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return str(text)
