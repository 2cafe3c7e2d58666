"""HTTP clients of the API: over Flask's test client (``Api``) and over the network (``Client``)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.polling import wait_for


def auth(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def healthy(base_url: str) -> bool:
    """True when ``GET /readyz`` answers 200 with status ok: the API can serve (a worker and
    beat may not be running yet; /healthz waits for them)."""
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
            return response.status == 200 and json.load(response).get("status") == "ok"
    except (OSError, ValueError):
        return False


class Api:
    """A thin client over Flask's test client that signs up parties and posts jobs."""

    def __init__(self, client: FlaskClient, admin_token: str):
        self.client = client
        self.admin = auth(admin_token)

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        """The Authorization header for ``token``."""
        return auth(token)

    def consumer(self, **overrides: Any) -> dict[str, Any]:
        """Sign up a consumer; returns the body with ``token`` and ``headers``."""
        r = self.client.post("/v1/consumers", json=consumer_body(**overrides))
        assert r.status_code == 201, r.json
        return {**r.json, "headers": auth(r.json["token"])}

    def worker(self, **overrides: Any) -> dict[str, Any]:
        """Sign up a worker near Berlin with plumbing skills unless overridden."""
        r = self.client.post("/v1/workers", json=worker_body(**overrides))
        assert r.status_code == 201, r.json
        return {**r.json, "headers": auth(r.json["token"])}

    def post_job(self, consumer: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        """Post a plumbing job in Berlin; returns the job."""
        r = self.client.post("/v1/jobs", json=job_body(**overrides), headers=consumer["headers"])
        assert r.status_code == 201, r.json
        return r.json

    def job(self, job_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Read a job (as the operator unless headers are given)."""
        r = self.client.get(f"/v1/jobs/{job_id}", headers=headers or self.admin)
        assert r.status_code == 200, r.json
        return r.json

    def events(self, job_id: int) -> list[dict[str, Any]]:
        """A job's history as the operator."""
        r = self.client.get(f"/v1/jobs/{job_id}/events", headers=self.admin)
        assert r.status_code == 200, r.json
        return r.json

    def wait_status(self, job_id: int, status: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll until the job is in ``status``."""
        return wait_for(
            lambda: (j := self.job(job_id))["status"] == status and j,
            timeout=timeout,
            what=f"job {job_id} to be {status}",
        )

    def feed(
        self, headers: dict[str, str], after: str | None = None, *, want: int = 1, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Poll the notification feed after ``after`` until it hands out ``want`` entries.

        The feed holds back what another transaction may still precede (the live worker's
        heartbeats are in flight a few times a second), for milliseconds here; a feed that
        stays frozen fails after 5 s, far below its 30 s bound (``GIGCO_FEED_HOLD_SECONDS``).
        """
        query = f"limit={limit}" + (f"&after={after}" if after else "")

        def page() -> list[dict[str, Any]] | None:
            r = self.client.get(f"/v1/notifications/feed?{query}", headers=headers)
            assert r.status_code == 200, r.json
            return r.json if len(r.json) >= want else None

        return wait_for(page, timeout=5, what=f"{want} notification(s) in the feed")

    def signal(self, job_id: int, action: str, party: dict[str, Any] | None = None) -> Any:
        """POST a lifecycle action as ``party`` (operator when None)."""
        headers = party["headers"] if party else self.admin
        return self.client.post(f"/v1/jobs/{job_id}/{action}", headers=headers)


RETRYABLE = {None, 502, 503, 504}


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: ``status`` is None when no answer came (refused, reset, timeout)."""

    method: str
    path: str
    status: int | None
    body: Any
    headers: Mapping[str, str]
    sent_at: float
    answered_at: float
    error: str | None = None
    attempt: int = 1  # which try of ``call_until_answered`` this answer came to


class Journal:
    """Every answer the fleet got, kept thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: list[Answer] = []

    def add(self, answer: Answer) -> None:
        """Keep ``answer``."""
        with self._lock:
            self.answers.append(answer)

    def snapshot(self) -> list[Answer]:
        """A copy of the answers so far."""
        with self._lock:
            return list(self.answers)

    def between(self, start: float, end: float) -> list[Answer]:
        """Answers to calls sent in the wall-clock window [start, end]."""
        return [a for a in self.snapshot() if start <= a.sent_at <= end]

    def server_errors(self) -> list[Answer]:
        """Answers a client must never see: a 5xx other than 503, or a 503 without the envelope."""
        return [
            a
            for a in self.snapshot()
            if a.status is not None
            and a.status >= 500
            and not (a.status == 503 and is_error_envelope(a.body, 503))
        ]


def is_error_envelope(body: Any, code: int) -> bool:
    """True for the API's error shape ``{code, status, message}`` with ``code``."""
    return (
        isinstance(body, dict)
        and body.get("code") == code
        and isinstance(body.get("status"), str)
        and isinstance(body.get("message"), str)
        and bool(body["message"])
    )


class Client:
    """JSON over HTTP with urllib; a new connection per call, as a mobile app would."""

    def __init__(self, base_url: str, journal: Journal, timeout: float = 20.0):
        self.base_url = base_url
        self.journal = journal
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request; never raises for HTTP errors or connection trouble."""
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        if token:
            sent["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=sent, method=method
        )
        sent_at = time.time()
        status: int | None = None
        payload: Any = None
        answer_headers: Mapping[str, str] = {}
        error: str | None = None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as http_error:
            status, answer_headers = http_error.code, http_error.headers
            try:
                raw = http_error.read()
            except (OSError, http.client.HTTPException) as exc:
                raw, error = b"", repr(exc)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out
            raw, error = b"", repr(exc)
        with contextlib.suppress(ValueError):
            payload = json.loads(raw) if raw else None
        if payload is None and raw:
            payload = raw.decode(errors="replace")[:500]
        answer = Answer(
            method, path, status, payload, dict(answer_headers or {}), sent_at, time.time(), error
        )
        self.journal.add(answer)
        return answer

    def call_until_answered(
        self,
        method: str,
        path: str,
        *,
        timeout: float = 90.0,
        stop: threading.Event | None = None,
        **kwargs: Any,
    ) -> Answer:
        """Repeat the same call while there is no answer or a 503; give up after ``timeout``."""
        deadline = time.monotonic() + timeout
        stop = stop or threading.Event()
        for attempt in itertools.count(1):
            answer = self.call(method, path, **kwargs)
            if answer.status not in RETRYABLE or time.monotonic() > deadline or stop.is_set():
                return dataclasses.replace(answer, attempt=attempt)
            stop.wait(0.2)
        raise AssertionError("unreachable")
