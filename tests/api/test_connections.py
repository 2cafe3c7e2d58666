"""A refused body does not poison the keep-alive connection it came on (gunicorn, gthread).

Every HTTP client library pools connections: after a 413 (or 415) answered before its body
was read, the client's next request goes out on the same connection. gunicorn drains at
most 64 KiB of an unread body and otherwise closes the connection after saying keep-alive,
so that next request used to fail ("Server disconnected without sending a response").
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.harness.bodies import consumer_body
from tests.harness.servers import live_server

ROUNDS = 40


@pytest.fixture(scope="module")
def keepalive_url(
    test_env: dict[str, str],
    live_worker: subprocess.Popen[bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """gunicorn as the Dockerfile runs it: gthread workers, which keep connections alive."""
    log = tmp_path_factory.mktemp("gunicorn-gthread") / "gunicorn.log"
    with live_server(test_env, log, workers=2, threads=4) as url:
        yield url


def _json_body(size: int) -> bytes:
    return json.dumps({"title": "x" * size}).encode()


@pytest.mark.parametrize(
    ("what", "body", "content_type", "status", "connection"),
    [
        # Over 64 KiB, under the drain bound: read and dropped, the connection kept.
        ("70 KB of JSON", _json_body(70_000), "application/json", 413, "keep-alive"),
        ("900 KB of JSON", _json_body(900_000), "application/json", 413, "keep-alive"),
        ("100 KB of text", b"x" * 100_000, "text/plain", 415, "keep-alive"),
        # Past the drain bound: not read, and the answer says the connection closes.
        ("2 MB of JSON", _json_body(2_000_000), "application/json", 413, "close"),
    ],
)
def test_the_next_request_on_a_pooled_connection_is_served_after_a_refused_body(
    keepalive_url: str,
    committed: None,
    what: str,
    body: bytes,
    content_type: str,
    status: int,
    connection: str,
) -> None:
    failures = []
    with httpx.Client(base_url=keepalive_url, timeout=20) as client:  # one pooled connection
        token = client.post("/v1/consumers", json=consumer_body()).json()["token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        for n in range(ROUNDS):
            refused = client.post("/v1/jobs", content=body, headers=headers)
            assert refused.status_code == status, (what, refused.text)
            assert refused.json()["code"] == status
            assert refused.headers["Connection"] == connection, what
            try:
                after = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
                assert after.status_code == 200, after.text
            except httpx.HTTPError as error:
                failures.append(f"round {n}: {error!r}")
    assert failures == [], f"{what}: {len(failures)} of {ROUNDS} next requests failed"


def test_a_chunked_body_past_the_limit_leaves_the_connection_usable(
    keepalive_url: str, committed: None
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(20):
            yield b"x" * 10_000
        yield b'"}'

    with httpx.Client(base_url=keepalive_url, timeout=20) as client:
        token = client.post("/v1/consumers", json=consumer_body()).json()["token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for _ in range(ROUNDS // 4):
            refused = client.post("/v1/jobs", content=chunks(), headers=headers)
            assert refused.status_code == 413, refused.text
            assert client.get("/v1/categories").status_code == 200
