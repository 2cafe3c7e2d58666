"""A real HTTP receiver on 127.0.0.1 for webhooks, and endpoint helpers (tests and bench)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

from gigco import webhooks
from tests.harness.http import Api


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; ``answer(request, tries_of_this_id)`` picks the status code."""

    base: str = ""
    requests: list[Received] = field(default_factory=list)
    answer: Callable[[str, dict[str, str], int], int] = lambda path, headers, tries: 204
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        """A URL on this receiver."""
        return self.base + path

    def at(self, path: str, status: int | None = None) -> list[Received]:
        """Requests to ``path`` (answered with ``status`` when given), in arrival order."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path == path and (status is None or r.answered == status)
            ]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many deliveries may connect at once (bench/webhooks.py)


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    """A threaded HTTP server on 127.0.0.1, for as long as the block runs."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with state.lock:
                tries = sum(
                    1
                    for r in state.requests
                    if r.headers.get("webhook-id") == headers.get("webhook-id")
                )
            code = state.answer(self.path, headers, tries)
            with state.lock:
                state.requests.append(Received(self.path, headers, body, code))
            self.send_response(code)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def register(api: Api, headers: dict[str, str], url: str, **body: Any) -> dict[str, Any]:
    """Register a webhook endpoint as the party of ``headers``; returns it with its secret."""
    r = api.client.post("/v1/webhook-endpoints", json={"url": url, **body}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def verified(received: Received, secret: str) -> Any:
    """The message, verified with standardwebhooks (raises when the signature is wrong)."""
    return Webhook(secret).verify(received.body, received.headers)


def claimed_ping(url: str, secret: str, msg_id: str = "msg_test") -> webhooks.Claimed:
    """A ping to ``url`` as a worker holds it once claimed, signed with ``secret``: what
    ``webhooks.send`` takes, without a database row behind it."""
    now = dt.datetime.now(dt.UTC)
    return webhooks.Claimed(
        delivery_id=1,
        endpoint_id=1,
        url=url,
        msg_id=msg_id,
        body='{"data":{},"type":"ping"}',
        secrets=(secret,),
        created_at=now,
        lease_until=now,
    )
