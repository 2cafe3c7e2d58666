"""A proxy on 127.0.0.1 in front of the Stripe-API server that injects faults on request:
a 500 without forwarding, or an answer that never comes in time after the request was
forwarded (what a client sees as a timeout after sending)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}


@dataclass
class Faults:
    """Faults to inject, each once, on the first request whose path ends with its suffix."""

    pending: list[tuple[str, str, str]] = field(default_factory=list)  # method, suffix, kind
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    release: threading.Event = field(default_factory=threading.Event)
    forwarded: threading.Event = field(default_factory=threading.Event)  # a lost one was sent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_on(self, suffix: str, kind: str, method: str = "POST") -> None:
        """``kind``: ``500`` (answer 500, forward nothing) or ``lost`` (forward, then hold the
        answer until ``release`` is set, past any client timeout)."""
        with self.lock:
            self.pending.append((method, suffix, kind))

    def take(self, method: str, path: str) -> str | None:
        with self.lock:
            for i, (wanted, suffix, kind) in enumerate(self.pending):
                if method == wanted and path.split("?")[0].endswith(suffix):
                    del self.pending[i]
                    return kind
        return None

    def count(self, method: str, suffix: str) -> int:
        """How many requests the server answered (or was sent, for a lost answer)."""
        return sum(1 for m, p, _ in self.seen if m == method and p.split("?")[0].endswith(suffix))


@contextmanager
def fault_proxy(upstream: str) -> Iterator[tuple[str, Faults]]:
    """Serve the proxy on a free loopback port; yields its URL and its faults."""
    faults = Faults()

    class Handler(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = faults.take(self.command, self.path)
            if kind == "500":
                self._answer(500, b'{"error": {"type": "api_error", "message": "injected"}}')
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            answer = requests.request(
                self.command, upstream + self.path, data=body, headers=headers, timeout=30
            )
            if kind == "lost":
                faults.seen.append((self.command, self.path, answer.status_code))
                faults.forwarded.set()
                faults.release.wait(timeout=60)
                return  # the connection closes with no answer
            self._answer(answer.status_code, answer.content)

        def _answer(self, status: int, content: bytes) -> None:
            faults.seen.append((self.command, self.path, status))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = _relay

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        faults.release.set()
        server.shutdown()
        server.server_close()
