"""Sending one message: the Standard Webhooks signature and one POST to a checked address.

The address is resolved and checked just before the POST and the connection is pinned to it
(``PinnedAdapter``), so a name whose DNS answer changes after the check cannot move it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from gigco.config import Settings
from gigco.webhooks.urls import LookupTimedOut, UnsafeUrl, resolve_url

MAX_BODY_STORED = 1024
USER_AGENT = "GigCo-Webhooks/1"


@dataclass(frozen=True)
class Outgoing:
    """A message ready to go: where, its id, its body and the secrets that sign it."""

    url: str
    msg_id: str
    body: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """What one attempt came to: the receiver's status (None if none) or an error."""

    attempted_at: dt.datetime
    duration_ms: int
    status: int | None = None
    body: str | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


def signature_headers(claimed: Outgoing, at: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers for ``claimed`` sent at ``at``: one signature per secret."""
    signatures = [
        Webhook(secret).sign(msg_id=claimed.msg_id, timestamp=at, data=claimed.body)
        for secret in claimed.secrets
    ]
    return {
        "webhook-id": claimed.msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class Deadline:
    """One attempt's whole time, DNS included: when it runs out a watchdog shuts down every
    socket the attempt opened, so a receiver that trickles bytes (each within a socket
    timeout) cannot hold the attempt, or the thread sending it, past it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(self._ends - time.monotonic(), 0.0)

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the time runs out (at once if it has)."""
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)

    def cancel(self) -> None:
        """The attempt is over: stop the watchdog."""
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _watched_pools(deadline: Deadline) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose new sockets ``deadline`` watches (TCP connect, TLS
    handshake, request and response alike)."""

    class Watched(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.watch(sock)
            return sock

    class WatchedTLS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.watch(sock)
            return sock

    class Pool(HTTPConnectionPool):
        ConnectionCls = Watched

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedTLS

    return {"http": Pool, "https": TLSPool}


class PinnedAdapter(HTTPAdapter):
    """Connects to one checked ``address``, not to what the URL's host resolves to later.

    The URL's host still names the ``Host`` header (set by the caller), the TLS server name
    (SNI) and the certificate the server must present: only the address is pinned, so a name
    whose DNS answer changes after the check (DNS rebinding) cannot move the connection.
    """

    def __init__(self, address: str, deadline: Deadline | None = None):
        self.deadline = deadline
        super().__init__(max_retries=0)
        self.address = address

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pool manager, with pools whose sockets the attempt's deadline watches."""
        super().init_poolmanager(*args, **kwargs)
        if self.deadline is not None:
            self.poolmanager.pool_classes_by_scheme = _watched_pools(self.deadline)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """urllib3's pool for the pinned address, verifying TLS for the URL's host name."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        hostname = host_params["host"]
        host_params["host"] = self.address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


def pinned_post(
    url: str,
    address: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    verify: bool | str = True,
    deadline: Deadline | None = None,
) -> requests.Response:
    """POST ``body`` to ``url`` over a connection to ``address`` (already checked).

    No redirects, no proxies or other settings from the environment (a proxy would resolve the
    name again); the response is streamed, for the caller to read what it keeps and close.
    """
    host_header = urlsplit(url).netloc.encode("idna").decode("ascii")
    with requests.Session() as http:
        http.trust_env = False
        http.mount(url, PinnedAdapter(address, deadline))
        return http.post(
            url,
            data=body,
            headers={**headers, "host": host_header},
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            verify=verify,
        )


def send(claimed: Outgoing, *, settings: Settings, now: dt.datetime) -> Answer:
    """POST the message once to an address checked just before: no redirects, 1 KiB read.

    The whole attempt, DNS included, ends within ``webhook_timeout_seconds`` (``Deadline``),
    well inside the claim's lease (``retries.lease_seconds``).
    """
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    deadline = Deadline(settings.webhook_timeout_seconds)
    try:
        addresses = resolve_url(
            claimed.url,
            allow_private=settings.webhook_allow_private_networks,
            timeout=deadline.remaining(),
        )
        with pinned_post(
            claimed.url,
            addresses[0],
            body=claimed.body.encode(),
            headers=signature_headers(claimed, now),
            timeout=deadline.remaining(),
            deadline=deadline,
        ) as response:
            body = response.raw.read(MAX_BODY_STORED, decode_content=True)
            return Answer(
                now,
                took(),
                status=response.status_code,
                body=body.decode("utf-8", "replace")[:MAX_BODY_STORED],
            )
    except LookupTimedOut as slow:
        return Answer(now, took(), error=f"timeout: {slow.reason}"[:500])
    except UnsafeUrl as refused:
        return Answer(now, took(), error=f"refused: {refused.reason}"[:500])
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, UnicodeError) as e:
        if deadline.expired:
            return Answer(now, took(), error=f"timeout: no answer within {deadline.seconds:g} s")
        return Answer(now, took(), error=f"{type(e).__name__}: {e}"[:500])
    finally:
        deadline.cancel()
