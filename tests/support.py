"""Helpers for tests: polling with a deadline and an API client that speaks GigCo."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask.testing import FlaskClient

T = TypeVar("T")
_ids = itertools.count(1)


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    every: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def race(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` in ``n`` threads released by one barrier; results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(i)
        except Exception as error:  # the loser's exception is the result under test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def future(hours: float = 48) -> str:
    """An ISO time ``hours`` from now."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


class Api:
    """A thin client over Flask's test client that signs up parties and posts jobs."""

    def __init__(self, client: FlaskClient, admin_token: str):
        self.client = client
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        """The Authorization header for ``token``."""
        return {"Authorization": f"Bearer {token}"}

    def consumer(self, **overrides: Any) -> dict[str, Any]:
        """Sign up a consumer; returns the body with ``token`` and ``headers``."""
        n = next(_ids)
        body = {"name": f"Consumer {n}", "email": f"c{n}-{time.time_ns()}@example.com", **overrides}
        r = self.client.post("/v1/consumers", json=body)
        assert r.status_code == 201, r.json
        return {**r.json, "headers": self.auth(r.json["token"])}

    def worker(self, **overrides: Any) -> dict[str, Any]:
        """Sign up a worker near Berlin with plumbing skills unless overridden."""
        n = next(_ids)
        body = {
            "name": f"Worker {n}",
            "email": f"w{n}-{time.time_ns()}@example.com",
            "skills": ["plumbing"],
            "location": {"lat": 52.52, "lng": 13.405},
            "service_radius_km": 25,
            **overrides,
        }
        r = self.client.post("/v1/workers", json=body)
        assert r.status_code == 201, r.json
        return {**r.json, "headers": self.auth(r.json["token"])}

    def post_job(self, consumer: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        """Post a plumbing job in Berlin; returns the job."""
        body = {
            "title": "Fix the sink",
            "category": "plumbing",
            "location": {"lat": 52.53, "lng": 13.41},
            "scheduled_start": future(),
            "estimated_hours": 2,
            **overrides,
        }
        r = self.client.post("/v1/jobs", json=body, headers=consumer["headers"])
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

    def signal(self, job_id: int, action: str, party: dict[str, Any] | None = None) -> Any:
        """POST a lifecycle action as ``party`` (operator when None)."""
        headers = party["headers"] if party else self.admin
        return self.client.post(f"/v1/jobs/{job_id}/{action}", headers=headers)
