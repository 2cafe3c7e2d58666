"""The demo's scenario: sign up a consumer and workers, post a job, drive it to ``closed``.

Only the public HTTP API is used, so the demo works against any running GigCo: ``gigco dev``,
the production topology, or a test server.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from gigco.demo.client import HTTP_TIMEOUT, Client, DemoError
from gigco.demo.output import Progress, finishing, money, print_timeline

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:5000"
CATEGORY = "plumbing"
ESTIMATED_HOURS = 2
# Statuses from which a job never reaches the one the demo waits for.
DEAD_ENDS = frozenset({"rejected", "expired", "cancelled", "no_worker", "payment_failed", "closed"})


@dataclass(frozen=True)
class Party:
    """A signed-up consumer or worker and their bearer token."""

    id: int
    token: str


class Demo:
    """One run: sign up a consumer and workers, post a job, drive it to ``closed``."""

    def __init__(
        self,
        client: Client,
        progress: Progress,
        *,
        admin_token: str | None,
        timeout: float,
        poll_interval: float,
        workers: int,
    ):
        self.client = client
        self.progress = progress
        self.admin_token = admin_token
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.worker_count = workers
        self.consumer: Party | None = None
        self.workers: list[Party] = []
        self.job_id = 0
        self.lat = self.lng = 0.0
        self.rng = random.Random()

    @property
    def viewer(self) -> str:
        """The token the demo reads the job with: the operator's if known, else the consumer's."""
        if self.admin_token:
            return self.admin_token
        assert self.consumer is not None
        return self.consumer.token

    def wait(self, what: str, probe: Callable[[], tuple[T | None, str]]) -> tuple[T, float]:
        """Poll ``probe`` (result or None, job status) until a result or the step's deadline."""
        started = time.monotonic()
        deadline = started + self.timeout
        while True:
            result, state = probe()
            now = time.monotonic()
            if result is not None:
                return result, now - started
            if now >= deadline:
                self.progress.clear()
                raise DemoError(
                    f"timed out after {self.timeout:g}s waiting for {what} "
                    f"(job {self.job_id} is {state}); is a Celery worker running?"
                )
            self.progress.waiting(what, f"job #{self.job_id} is {state}", now - started)
            time.sleep(min(self.poll_interval, max(deadline - now, 0)))

    def job(self) -> dict[str, Any]:
        """The job as it is now."""
        return self.client.call("GET", f"/v1/jobs/{self.job_id}", token=self.viewer)

    def wait_status(self, status: str) -> dict[str, Any]:
        """Poll the job until it is in ``status``; fail at once if it can no longer get there."""

        def probe() -> tuple[dict[str, Any] | None, str]:
            job = self.job()
            if job["status"] == status:
                return job, status
            if job["status"] in DEAD_ENDS:
                self.progress.clear()
                raise DemoError(
                    f"job {self.job_id} ended in {job['status']} while the demo waited for {status}"
                )
            return None, job["status"]

        job, took = self.wait(status, probe)
        self.progress.step(f"job #{self.job_id} is {status} ({took:.1f}s)")
        return job

    def act(self, action: str, party: Party) -> dict[str, Any]:
        """POST an action on the job as ``party``."""
        return self.client.call("POST", f"/v1/jobs/{self.job_id}/{action}", token=party.token)

    def check_server(self) -> None:
        """The server answers /healthz, and the operator token (if any) is the operator's."""
        status, body = self.client.send("GET", "/healthz")
        if status == 503 and isinstance(body, dict):
            parts = body.get("message") or ", ".join(str(d) for d in body.get("down", []))
            raise DemoError(f"GigCo at {self.client.base_url} is unhealthy: {parts or body}")
        if status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
            raise DemoError(
                f"GET /healthz at {self.client.base_url} answered {status}; is it a GigCo server?"
            )
        if self.admin_token:
            status, me = self.client.send("GET", "/v1/me", token=self.admin_token)
            if status != 200 or not isinstance(me, dict) or me.get("role") != "operator":
                raise DemoError(
                    "the admin token is not the operator's (GET /v1/me answered "
                    f"{status}); pass --admin-token or set GIGCO_ADMIN_TOKEN"
                )
        self.progress.step(f"GigCo at {self.client.base_url} is healthy")

    def sign_up(self) -> None:
        """One consumer and a few workers near a random spot, so no earlier run interferes."""
        tag = uuid.uuid4().hex[:8]
        self.lat = round(self.rng.uniform(-55, 65), 5)
        self.lng = round(self.rng.uniform(-170, 170), 5)
        body = self.client.call(
            "POST",
            "/v1/consumers",
            body={"name": "Demo Consumer", "email": f"demo-{tag}@example.com"},
            expect=(201,),
        )
        self.consumer = Party(body["id"], body["token"])
        self.progress.step(f"consumer #{body['id']} signed up (demo-{tag}@example.com)")
        for n in range(1, self.worker_count + 1):
            body = self.client.call(
                "POST",
                "/v1/workers",
                body={
                    "name": f"Demo Worker {n}",
                    "email": f"demo-{tag}-w{n}@example.com",
                    "skills": [CATEGORY],
                    # n × ~1 km north of the job: worker 1 is nearest, so asked first.
                    "location": {"lat": round(self.lat + 0.009 * n, 5), "lng": self.lng},
                    "service_radius_km": 10,
                },
                expect=(201,),
            )
            self.workers.append(Party(body["id"], body["token"]))
        ids = ", ".join(f"#{w.id}" for w in self.workers)
        self.progress.step(f"{len(self.workers)} {CATEGORY} workers signed up ({ids})")

    def post_job(self) -> None:
        """Post a plumbing job for tomorrow and wait for its price offer."""
        assert self.consumer is not None
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
        job = self.client.call(
            "POST",
            "/v1/jobs",
            token=self.consumer.token,
            headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"},
            body={
                "title": "Fix the kitchen sink",
                "description": "Posted by gigco demo.",
                "category": CATEGORY,
                "location": {"lat": self.lat, "lng": self.lng},
                "scheduled_start": start.isoformat(),
                "estimated_hours": ESTIMATED_HOURS,
            },
            expect=(201,),
        )
        self.job_id = job["id"]
        self.progress.step(
            f"job #{self.job_id} posted: {CATEGORY}, {ESTIMATED_HOURS} h at "
            f"({self.lat}, {self.lng}), starting {start:%Y-%m-%d %H:%M} UTC"
        )
        offered = self.wait_status("offered")
        self.progress.step(
            f"offer: {money(offered['price_cents'])} "
            f"({money(offered['subtotal_cents'])} + {money(offered['fee_cents'])} fee)"
        )

    def match(self) -> Party:
        """Accept the offer, wait for one of our workers to hold an opportunity, take it."""
        assert self.consumer is not None
        self.act("offer/accept", self.consumer)
        self.progress.step("consumer accepted the offer")

        def probe() -> tuple[Party | None, str]:
            for worker in self.workers:
                pending = self.client.call("GET", "/v1/opportunities", token=worker.token)
                if any(o["job_id"] == self.job_id for o in pending):
                    return worker, "opportunity"
            state = self.job()["status"]
            if state in DEAD_ENDS:
                self.progress.clear()
                raise DemoError(f"job {self.job_id} ended in {state} before a worker was found")
            return None, state

        worker, took = self.wait("an opportunity", probe)
        self.progress.step(f"worker #{worker.id} was offered the job ({took:.1f}s)")
        self.act("opportunity/accept", worker)
        self.progress.step(f"worker #{worker.id} accepted the opportunity")
        return worker

    def work(self, worker: Party) -> None:
        """Wait for scheduling; the worker starts and completes; wait for payment and reviews."""
        self.wait_status("scheduled")
        self.act("start", worker)
        self.progress.step(f"worker #{worker.id} started the work")
        self.act("complete", worker)
        self.progress.step(f"worker #{worker.id} completed the work")
        self.wait_status("review_pending")
        payment = self.client.call("GET", f"/v1/jobs/{self.job_id}/payment", token=self.viewer)
        self.progress.step(
            f"payment {payment['status']}: {money(payment['amount_cents'])}, worker earns "
            f"{money(payment['worker_earnings_cents'])}"
        )

    def review(self, worker: Party) -> None:
        """Both sides review each other; wait for the job to close."""
        assert self.consumer is not None
        star = self.progress.glyphs.star
        for party, rating, comment in (
            (self.consumer, 5, "Quick and tidy."),
            (worker, 5, "Friendly customer."),
        ):
            self.client.call(
                "POST",
                f"/v1/jobs/{self.job_id}/reviews",
                token=party.token,
                body={"rating": rating, "comment": comment},
                expect=(201,),
            )
        self.progress.step(f"both reviews in ({star * 5} each)")
        self.wait_status("closed")

    def timeline(self) -> list[dict[str, Any]]:
        """The job's full history."""
        return self.client.call("GET", f"/v1/jobs/{self.job_id}/events", token=self.viewer)

    def retire_workers(self) -> None:
        """Make the demo's workers unavailable, so they are never offered anyone's real job."""
        for worker in self.workers:
            try:
                self.client.call(
                    "PATCH",
                    "/v1/workers/me",
                    token=worker.token,
                    body={"available": False},
                    timeout=2,
                )
            except DemoError:
                return


def run_demo(
    *,
    url: str = DEFAULT_URL,
    admin_token: str | None = None,
    timeout: float = 60.0,
    poll_interval: float = 0.15,
    workers: int = 3,
    out: TextIO,
    tty: bool | None = None,
) -> list[dict[str, Any]]:
    """Run the whole lifecycle against ``url``, print progress and the timeline; return it."""
    progress = Progress(out, tty=tty)
    client = Client(url, timeout=min(HTTP_TIMEOUT, timeout))
    demo = Demo(
        client,
        progress,
        admin_token=admin_token,
        timeout=timeout,
        poll_interval=poll_interval,
        workers=workers,
    )
    began = time.monotonic()
    with finishing(progress):
        demo.check_server()
        try:
            demo.sign_up()
            demo.post_job()
            worker = demo.match()
            demo.work(worker)
            demo.review(worker)
        finally:
            demo.retire_workers()
        events = demo.timeline()
    print_timeline(out, demo.job_id, events, progress.glyphs, time.monotonic() - began)
    return events
