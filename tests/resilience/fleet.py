"""A fleet of concurrent jobs driven over HTTP like real clients, with the standard library.

Every consumer posts one job (with an ``Idempotency-Key``) and then plays its part from the
job's status: accept the offer, review when asked. Each worker polls ``GET /v1/opportunities``
and accepts what it is offered; the assigned worker starts, completes and reviews. Every call
tolerates faults the way a careful client would: no answer or a 503 is tried again; every
answer is kept in a journal, so a test can assert that no call ever got a 500.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gigco.lifecycle.transitions import TERMINAL
from gigco.models import JobStatus
from tests.harness.bodies import MISSING
from tests.harness.bodies import job_body as base_job_body
from tests.harness.http import Answer, Client

# Where a fleet's job stops moving: a terminal status, or payment_failed (an operator's turn).
TERMINAL_NOT_CLOSED = (TERMINAL - {JobStatus.CLOSED}) | {JobStatus.PAYMENT_FAILED}


@dataclass(frozen=True)
class Party:
    """A signed-up consumer or worker."""

    id: int
    token: str


REGION_SPACING_DEG = 1.0  # ~111 km between regions; a worker serves 15 km around itself


def region_location(region: int) -> dict[str, float]:
    """The centre of ``region``: regions are far apart, so matching stays within one."""
    return {"lat": 40.0 + region * REGION_SPACING_DEG, "lng": -3.7}


def job_body(index: int, region: int) -> dict[str, Any]:
    """A plumbing job in ``region`` with its own 2-hour window, so workers never overlap."""
    start = dt.datetime(2031, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=3 * index)
    return base_job_body(
        start=start,
        title=f"Resilience job {index}",
        description=MISSING,
        location=region_location(region),
    )


@dataclass
class Fleet:
    """N jobs, one consumer each, and a few workers per region, driven concurrently."""

    client: Client
    size: int = 24
    # Every n-th consumer's card is refused twice first (0: none): payment retries on timers.
    flaky_every: int = 3
    regions: int = 4
    workers_per_region: int = 2
    # The fleet's regions are ``first_region`` on: a second fleet on the same stack gets its
    # own, so matching never offers its jobs to the first fleet's workers, whose apps have
    # stopped answering (their opportunities would wait out their whole TTL).
    first_region: int = 0
    poll: float = 0.3
    tag: str = field(default_factory=lambda: f"{time.time_ns():x}")
    consumers: list[Party] = field(default_factory=list)
    workers: dict[int, Party] = field(default_factory=dict)
    job_ids: dict[int, int] = field(default_factory=dict)  # fleet index -> job id
    post_answers: dict[int, Answer] = field(default_factory=dict)  # the answer each POST ended on
    statuses: dict[int, str] = field(default_factory=dict)  # job id -> last status seen
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _started: set[int] = field(default_factory=set)
    _errors: list[BaseException] = field(default_factory=list)

    def sign_up(self) -> None:
        """Sign up the consumers and the workers (before any fault is injected)."""
        for i in range(self.size):
            answer = self.client.call_until_answered(
                "POST",
                "/v1/consumers",
                body={
                    "name": f"Consumer {i}",
                    "email": f"c{i}-{self.tag}@example.com",
                    "payment_method": (
                        "pm_card_flaky"
                        if self.flaky_every and i % self.flaky_every == 0
                        else "pm_card_visa"
                    ),
                },
            )
            assert answer.status == 201, answer
            self.consumers.append(Party(answer.body["id"], answer.body["token"]))
        for region in range(self.first_region, self.first_region + self.regions):
            centre = region_location(region)
            for k in range(self.workers_per_region):
                answer = self.client.call_until_answered(
                    "POST",
                    "/v1/workers",
                    body={
                        "name": f"Worker {region}.{k}",
                        "email": f"w{region}-{k}-{self.tag}@example.com",
                        "skills": ["plumbing"],
                        "location": {"lat": centre["lat"] + 0.01 * k, "lng": centre["lng"]},
                        "service_radius_km": 15,
                    },
                )
                assert answer.status == 201, answer
                self.workers[answer.body["id"]] = Party(answer.body["id"], answer.body["token"])

    def start(self, indices: Iterable[int] | None = None, *, stagger: float = 0.0) -> None:
        """Start driving jobs ``indices`` (all not yet started by default), ``stagger`` apart."""
        if not self._threads:
            for worker in self.workers.values():
                self._spawn(self._answer_opportunities, worker)
        chosen = [
            i for i in (range(self.size) if indices is None else indices) if i not in self._started
        ]
        self._started.update(chosen)
        begin = time.monotonic()
        for n, i in enumerate(chosen):
            self._spawn(self._drive, i, begin + n * stagger)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        """Run ``target`` on a daemon thread (never keeps a failed run's interpreter alive)."""

        def run() -> None:
            try:
                target(*args)
            except BaseException as error:  # re-raised in the test's thread, not lost here
                self._errors.append(error)

        thread = threading.Thread(target=run, name=f"fleet-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def closed(self) -> int:
        """How many jobs the fleet has seen closed."""
        with self._lock:
            return sum(1 for s in self.statuses.values() if s == JobStatus.CLOSED)

    def wait_all_closed(self, timeout: float) -> float:
        """Wait until every job is closed; return the wall-clock time it happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_thread_errors()
            if len(self.job_ids) == self.size and self.closed() == self.size:
                return time.time()
            if self.failures:
                break
            time.sleep(0.1)
        with self._lock:
            seen = Counter(self.statuses.values())
        raise AssertionError(
            f"not every job closed within {timeout}s: {dict(seen)}, posted {len(self.job_ids)}"
            f"/{self.size}, failures {self.failures}"
        )

    def stop(self, *, timeout: float = 30.0, check: bool = True) -> None:
        """Stop every driving thread and wait for them; raise what any raised if ``check``."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if check:
            self._raise_thread_errors()

    def _raise_thread_errors(self) -> None:
        if self._errors:
            raise AssertionError("a fleet thread failed") from self._errors[0]

    def _post(self, path: str, party: Party, body: Any = None) -> Answer:
        return self.client.call("POST", path, token=party.token, body=body)

    def _drive(self, i: int, start_at: float) -> None:
        """Post job ``i`` (retrying with its key until answered), then play its parties."""
        self._stop.wait(max(0.0, start_at - time.monotonic()))
        consumer = self.consumers[i]
        answer = self.client.call_until_answered(
            "POST",
            "/v1/jobs",
            token=consumer.token,
            body=job_body(i, self.first_region + i % self.regions),
            headers={"Idempotency-Key": f"{self.tag}-job-{i}"},
            timeout=120,
            stop=self._stop,
        )
        self.post_answers[i] = answer
        if answer.status != 201:
            self.failures.append(f"POST /v1/jobs for job {i} ended on {answer.status}")
            return
        job_id = answer.body["id"]
        with self._lock:
            self.job_ids[i] = job_id
        reviewed: set[str] = set()
        while not self._stop.is_set():
            got = self.client.call("GET", f"/v1/jobs/{job_id}", token=consumer.token)
            if got.status != 200:
                self._stop.wait(self.poll)
                continue
            status = got.body["status"]
            with self._lock:
                self.statuses[job_id] = status
            if status == JobStatus.CLOSED:
                return
            if status in TERMINAL_NOT_CLOSED:
                self.failures.append(f"job {job_id} ended {status}")
                return
            acted = self._act(job_id, status, got.body, consumer, reviewed)
            self._stop.wait(0.02 if acted else self.poll * random.uniform(0.8, 1.2))

    def _act(
        self, job_id: int, status: str, job: dict[str, Any], consumer: Party, reviewed: set[str]
    ) -> bool:
        """Do what the job's status asks of its people; True if a call moved it on."""
        worker = self.workers.get(job.get("worker_id") or 0)
        base = f"/v1/jobs/{job_id}"
        steps: dict[str, Callable[[], Answer]] = {
            "offered": lambda: self._post(f"{base}/offer/accept", consumer),
        }
        if worker is not None:
            steps["scheduled"] = lambda: self._post(f"{base}/start", worker)
            steps["in_progress"] = lambda: self._post(f"{base}/complete", worker)
        if status in steps:
            return steps[status]().status == 200
        acted = False
        if status == "review_pending" and worker is not None:
            for side, party in (("consumer", consumer), ("worker", worker)):
                if side not in reviewed:
                    answer = self._post(f"{base}/reviews", party, {"rating": 5})
                    if answer.status in (201, 409):  # 409: already reviewed (a retried call)
                        reviewed.add(side)
                        acted = True
        return acted

    def _answer_opportunities(self, worker: Party) -> None:
        """A worker's app: poll the pending opportunities and accept each one."""
        while not self._stop.is_set():
            if len(self.job_ids) == self.size and self.closed() == self.size:
                return
            got = self.client.call("GET", "/v1/opportunities", token=worker.token)
            if got.status == 200:
                for opportunity in got.body:
                    self._post(f"/v1/jobs/{opportunity['job_id']}/opportunity/accept", worker)
            self._stop.wait(self.poll * random.uniform(0.8, 1.2))
