"""A delivery connects to the address it checked (no second DNS lookup), TLS still by name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gigco import webhooks
from gigco.config import Settings
from gigco.webhooks.transport import pinned_post
from tests.harness.webhooks import Receiver, claimed_ping, verified

SECRET = webhooks.new_secret()


def _claimed(url: str) -> webhooks.Claimed:
    return claimed_ping(url, SECRET, "msg_transport")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names looked up through DNS; a second answer for ``localhost`` "rebinds" it to
    127.0.0.2, where nothing listens (traffic stays on 127.0.0.0/8)."""
    seen: list[str] = []
    real: Callable[..., Any] = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        seen.append(name)
        if name == "localhost" and seen.count("localhost") > 1:
            return real("127.0.0.2", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


def test_a_delivery_connects_to_the_address_it_checked(
    receiver: Receiver, settings: Settings, lookups: list[str]
) -> None:
    assert settings.webhook_allow_private_networks
    url = receiver.url("/pinned").replace("127.0.0.1", "localhost")
    claimed = _claimed(url)
    answer = webhooks.send(claimed, settings=settings, now=dt.datetime.now(dt.UTC))
    assert (answer.status, answer.error) == (204, None)
    assert lookups.count("localhost") == 1  # the check's lookup is the only one
    (got,) = receiver.at("/pinned")
    assert got.headers["host"] == url.split("/")[2]  # localhost:<port>, not the address
    assert verified(got, SECRET)["type"] == "ping"


def test_a_name_resolving_to_a_private_address_is_refused_without_connecting(
    receiver: Receiver, settings: Settings, lookups: list[str]
) -> None:
    public = dataclasses.replace(settings, webhook_allow_private_networks=False)
    url = receiver.url("/refused").replace("http://127.0.0.1", "https://localhost")
    answer = webhooks.send(_claimed(url), settings=public, now=dt.datetime.now(dt.UTC))
    assert answer.status is None and answer.error is not None
    assert answer.error.startswith("refused: The URL resolves to 127.0.0.1 is not a public")
    assert lookups == ["localhost"]
    assert receiver.requests == []


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, Path, list[str | None]]]:
    """An HTTPS server on 127.0.0.1 with a certificate for ``receiver.example`` only; yields
    its port, the certificate (to trust) and the server names clients sent (SNI)."""
    cert, key = _certificate(tmp_path, "receiver.example")
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(204 if self.headers["host"].startswith("receiver.example:") else 400)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert, names
    finally:
        server.shutdown()
        server.server_close()


def test_tls_checks_the_urls_host_name_on_the_pinned_address(
    tls_receiver: tuple[int, Path, list[str | None]],
) -> None:
    port, cert, names = tls_receiver
    # receiver.example never reaches DNS: the connection goes to the pinned address.
    with pinned_post(
        f"https://receiver.example:{port}/hook",
        "127.0.0.1",
        body=b"{}",
        headers={},
        timeout=5,
        verify=str(cert),
    ) as response:
        assert response.status_code == 204
    assert names == ["receiver.example"]
    # The same trusted certificate on the same address fails for another name in the URL.
    with pytest.raises(requests.exceptions.SSLError, match=r"other\.example"):
        pinned_post(
            f"https://other.example:{port}/hook",
            "127.0.0.1",
            body=b"{}",
            headers={},
            timeout=5,
            verify=str(cert),
        )
