"""GigCo's production topology, started by the suite: gunicorn, Celery worker(s) and beat(s).

Every process runs in its own process group, so a SIGKILL of the group takes its children
(prefork pool processes, gunicorn workers) with it, as a crash of the host process would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gigco import processes
from gigco.processes import free_port
from tests.harness.http import healthy
from tests.harness.polling import wait_for
from tests.harness.servers import beat_argv, gunicorn_argv, worker_argv

ADMIN_TOKEN = "resilience-operator-token-0123456789"
SWEEP_SECONDS = 1.0
GRACE_SECONDS = 2.0
# Sweep and grace as in tests/harness/env.py TIMERS. The deadlines a *person* must meet (offer,
# opportunity, review window) are longer than any injected outage, so that a fault delays a
# job but never legitimately sends it to expired or no_worker; the suite is about the system.
TIMERS = {
    "GIGCO_SWEEP_INTERVAL_SECONDS": str(SWEEP_SECONDS),
    "GIGCO_STUCK_STEP_GRACE_SECONDS": str(GRACE_SECONDS),
    "GIGCO_OFFER_TTL_SECONDS": "120",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "60",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "1",
    "GIGCO_MATCH_MAX_ROUNDS": "3",
    "GIGCO_REVIEW_WINDOW_SECONDS": "60",
    "GIGCO_PAYMENT_MAX_ATTEMPTS": "3",
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": "0.3",
    # A worker killed mid-charge leaves its claim: the payment is due again after this.
    "GIGCO_PAYMENT_LEASE_SECONDS": "2",
    # Webhook receivers run on 127.0.0.1; a 3 s timeout makes the delivery lease 11 s.
    "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
    "GIGCO_WEBHOOK_TIMEOUT_SECONDS": "3",
    # /healthz: work waiting this long while no worker finished a task = workers down.
    "GIGCO_HEALTH_STALL_SECONDS": "4",
}
# What a recovery may take beyond the spec's "one sweep interval plus grace", on a shared
# 2-core machine: beat's tick and the worker's poll add up to a sweep of jitter, a task that
# was re-kicked waits behind the backlog the outage left in the queue, and every process
# competes with the fleet's 32 client threads for CPU (a payment retry's own backoff is not
# counted: invariants.step_timings). See docs/reliability.md.
SLACK_SECONDS = 4.0


@dataclass
class Topology:
    """The running processes of one test, by name, and how to reach the API."""

    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The API's base URL (the same across API restarts)."""
        return f"http://127.0.0.1:{self.port}"

    def log(self, name: str) -> Path:
        """The log file of process ``name``."""
        return self.logs / f"{name}.log"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        process = processes.start(argv, env={**os.environ, **self.env}, log=self.log(name))
        self.procs[name] = process
        return process

    def start_api(self, name: str = "api", timeout: float = 60) -> None:
        """gunicorn as production runs it (docker-compose.yml, the Dockerfile: two workers of
        four threads), on this port; wait for readyz."""
        extra = ("--graceful-timeout", "5", "--access-logfile", "-")
        process = self._spawn(name, gunicorn_argv(self.port, workers=2, threads=4, extra=extra))
        wait_for(
            lambda: process.poll() is not None or healthy(self.base_url),
            timeout=timeout,
            every=0.1,
            what=f"gunicorn to answer {self.base_url}/readyz",
        )
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log(name).read_text()[-3000:]}")

    def start_worker(
        self, name: str = "worker", *, queues: str | None = None, concurrency: int = 3
    ) -> None:
        """``celery worker`` with the default prefork pool (3 processes), on every queue or
        on ``queues`` (``-Q``), as production's lifecycle and webhooks workers are."""
        extra = ("--pool", "prefork", "--concurrency", str(concurrency), "-n", f"{name}@%h")
        self._spawn(name, worker_argv(*extra, *(("-Q", queues) if queues else ()), loglevel="INFO"))

    def wait_worker_ready(self, name: str = "worker", timeout: float = 60) -> float:
        """Wait until worker ``name`` consumes from the broker; return that wall-clock time."""
        process = self.procs[name]

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name).read_text()[-3000:]}")
            return " ready." in self.log(name).read_text(errors="replace")

        wait_for(ready, timeout=timeout, every=0.05, what=f"celery worker {name} to be ready")
        return time.time()

    def start_beat(self, name: str = "beat") -> None:
        """``celery beat`` with its own schedule file, logging at DEBUG: its "Sending due task"
        lines are routine (DEBUG, so an idle sweep writes nothing at INFO), and the tests count
        them."""
        self._spawn(name, beat_argv(self.logs / f"{name}.schedule", loglevel="DEBUG"))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> float:
        """Send ``sig`` to the whole process group of ``name``; return when it was sent."""
        process = self.procs[name]
        sent_at = time.time()
        processes.signal_group(process, sig)
        process.wait(timeout=30)
        return sent_at

    def shut_down(self, name: str, timeout: float = 60) -> float:
        """SIGTERM to the main process only, as an orchestrator stops a container (a Celery
        worker's warm shutdown: running tasks finish, prefetched messages go back to the
        broker); wait for it to exit; return when it had."""
        process = self.procs[name]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=timeout)
        return time.time()

    def children(self, name: str) -> list[int]:
        """Process ids of the direct children of ``name`` (gunicorn's workers)."""
        pid = self.procs[name].pid
        with contextlib.suppress(OSError):
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return []

    def stop(self, *, graceful: bool = True) -> None:
        """SIGTERM every group, SIGKILL what is left after 15 s; or (not ``graceful``: a
        scenario over, its database and broker thrown away) SIGKILL every group at once."""
        if graceful:
            processes.stop_all(list(self.procs.values()), timeout=15)
            return
        for process in self.procs.values():
            processes.signal_group(process, signal.SIGKILL)
        for process in self.procs.values():
            process.wait()
