"""A time-skipping GigCo for the tests of people building on it (``pytest`` plugin: the
``gigco`` fixture, ``gigco.testing.plugin``).

One GigCo in the test's own process: the API (Flask's test client) on an SQLite database of
the test's own, with test clocks on; a worker that runs every step the API and the steps
queue (``GigCo.run``), with the real task code; and test clocks the test advances
(``GigCo.test_clock``), so a seven-day review window passes in milliseconds::

    def test_the_review_window_closes_the_job(gigco):
        consumer, worker = gigco.consumer(), gigco.worker()
        clock = gigco.test_clock(consumer)
        job = gigco.post_job(consumer, test_clock=clock.id)
        ...
        clock.advance(days=7)
        assert gigco.job(consumer, job)["status"] == "closed"
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from gigco import migrate
from gigco.config import Settings, load_settings
from gigco.tasks.app import app as celery_app
from gigco.tasks.app import configure
from gigco.tasks.celery_settings import QUEUES
from gigco.tasks.runtime import runtime

__all__ = ["GigCo", "TestClockHandle", "migrated_database"]

_emails = itertools.count(1)


def migrated_database(path: Path) -> Path:
    """An SQLite database at ``path`` with GigCo's schema (and its categories)."""
    migrate.upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # everything into the main file, so it can be copied
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@dataclass
class TestClockHandle:
    """A test clock of one party's, as the test drives it."""

    __test__ = False  # not a pytest test class

    gigco: GigCo
    party: dict[str, Any]
    id: int

    @property
    def now(self) -> dt.datetime:
        """Where the clock stands."""
        body = self.gigco.call("GET", f"/v1/test_clocks/{self.id}", self.party)
        return dt.datetime.fromisoformat(body["frozen_time"])

    def advance(self, to: dt.datetime | None = None, **delta: float) -> dt.datetime:
        """Move the clock to ``to`` (or on by ``timedelta(**delta)``) and run everything due
        up to then, in due order; returns the clock's new time."""
        target = to or self.now + dt.timedelta(**delta)
        body = {"frozen_time": target.isoformat()}
        self.gigco.call("POST", f"/v1/test_clocks/{self.id}/advance", self.party, body, 202)
        self.gigco.run()
        return self.now


@dataclass
class GigCo:
    """An in-process GigCo: ``client`` is the API, ``run()`` the worker."""

    app: Flask
    settings: Settings
    client: FlaskClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    @classmethod
    def start(cls, data_dir: Path, template: Path | None = None, **env: str) -> GigCo:
        """A GigCo on an SQLite database in ``data_dir`` (a copy of ``template`` when given,
        else migrated anew), with an in-memory broker; ``env`` adds GIGCO_* settings."""
        from gigco.web import create_app  # the API only when a test asks for one

        data_dir.mkdir(parents=True, exist_ok=True)
        database = data_dir / "gigco.db"
        if template is not None:
            shutil.copyfile(template, database)
        else:
            migrated_database(database)
        settings = load_settings(
            {
                "GIGCO_DATA_DIR": str(data_dir),
                "GIGCO_DATABASE_URL": f"sqlite:///{database}",
                "GIGCO_BROKER_URL": "memory://",
                "GIGCO_TEST_CLOCKS": "1",
                "GIGCO_LOG_LEVEL": "WARNING",
                **env,
            }
        )
        return cls(create_app(settings), settings)

    # --- the worker -------------------------------------------------------------------

    def run(self, limit: int = 10_000) -> int:
        """Run every task queued (steps, a clock's advance, webhook deliveries), and those they
        queue, until none is left; returns how many ran. A task due later on real time
        (a real job's deadline) stays queued."""
        configure(self.settings)  # this GigCo's database and broker, whatever ran between
        ran = 0
        later: list[Any] = []
        with celery_app.connection_for_write() as conn:
            channel = conn.default_channel
            while ran < limit:
                message = next(
                    (m for q in QUEUES if (m := channel.basic_get(q, no_ack=True)) is not None),
                    None,
                )
                if message is None:
                    break
                eta = message.headers.get("eta")
                if eta and dt.datetime.fromisoformat(eta) > dt.datetime.now(dt.UTC):
                    later.append(message)
                    continue
                args, kwargs, _embed = message.decode()
                celery_app.tasks[message.headers["task"]].apply(args=args, kwargs=kwargs)
                ran += 1
            for message in later:
                channel.basic_publish(
                    message.body,
                    routing_key=message.delivery_info.get("routing_key") or "celery",
                    headers=message.headers,
                    properties=message.properties,
                )
        return ran

    # --- the API, as a client would call it --------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        party: dict[str, Any] | None = None,
        body: Any = None,
        expect: int | None = None,
    ) -> Any:
        """One API call as ``party``; asserts the status ``expect`` (any 2xx when None)."""
        headers = {"Authorization": f"Bearer {party['token']}"} if party else {}
        response = self.client.open(path, method=method, json=body, headers=headers)
        ok = response.status_code == expect if expect else 200 <= response.status_code < 300
        assert ok, f"{method} {path}: {response.status_code} {response.get_json()}"
        return response.get_json()

    def consumer(self, **body: Any) -> dict[str, Any]:
        """A signed-up consumer (its resource with ``token``)."""
        n = next(_emails)
        made = {"name": f"Consumer {n}", "email": f"consumer{n}@example.com", **body}
        return dict(self.call("POST", "/v1/consumers", None, made, 201))

    def worker(self, **body: Any) -> dict[str, Any]:
        """A signed-up plumber in Berlin (25 km around the centre) unless ``body`` says else."""
        n = next(_emails)
        made = {
            "name": f"Worker {n}",
            "email": f"worker{n}@example.com",
            "skills": ["plumbing"],
            "location": {"lat": 52.52, "lng": 13.405},
            "service_radius_km": 25,
            **body,
        }
        return dict(self.call("POST", "/v1/workers", None, made, 201))

    def test_clock(
        self, party: dict[str, Any], frozen_time: dt.datetime | None = None
    ) -> TestClockHandle:
        """A new test clock of ``party``'s, standing at ``frozen_time`` (now, to the second)."""
        at = frozen_time or dt.datetime.now(dt.UTC).replace(microsecond=0)
        made = self.call("POST", "/v1/test_clocks", party, {"frozen_time": at.isoformat()}, 201)
        return TestClockHandle(self, party, made["id"])

    def post_job(self, consumer: dict[str, Any], **body: Any) -> int:
        """A plumbing job in Berlin two days ahead (``body`` overrides), posted and run to
        its offer; returns its id."""
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        made = {
            "title": "Fix the sink",
            "category": "plumbing",
            "location": {"lat": 52.53, "lng": 13.41},
            "scheduled_start": start.isoformat(),
            "estimated_hours": 2,
            **body,
        }
        job_id = int(self.call("POST", "/v1/jobs", consumer, made, 201)["id"])
        self.run()
        return job_id

    def act(self, party: dict[str, Any], job_id: int, action: str, body: Any = None) -> Any:
        """``POST /v1/jobs/<id>/<action>`` as ``party``, then run what it made due."""
        answer = self.call("POST", f"/v1/jobs/{job_id}/{action}", party, body)
        self.run()
        return answer

    def job(self, party: dict[str, Any], job_id: int) -> dict[str, Any]:
        """The job as ``party`` sees it."""
        return dict(self.call("GET", f"/v1/jobs/{job_id}", party))

    def events(self, party: dict[str, Any], job_id: int) -> list[dict[str, Any]]:
        """The job's history as ``party`` sees it."""
        return list(self.call("GET", f"/v1/jobs/{job_id}/events", party))

    def close(self) -> None:
        """Drop the connections of this GigCo's database."""
        runtime().dispose()
