"""GigCo's production topology, started by the suite: gunicorn, Celery worker(s) and beat(s).

Every process runs in its own process group, so a SIGKILL of the group takes its children
(prefork pool processes, gunicorn workers) with it, as a crash of the host process would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from tests.live_server import free_port, healthy
from tests.support import wait_for

ADMIN_TOKEN = "resilience-operator-token-0123456789"
SWEEP_SECONDS = 1.0
GRACE_SECONDS = 2.0
# Sweep and grace as in tests/conftest.py TIMERS. The deadlines a *person* must meet (offer,
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
    # /healthz: work waiting this long while no worker finished a task = workers down.
    "GIGCO_HEALTH_STALL_SECONDS": "4",
}
# What a recovery may take beyond the spec's "one sweep interval plus grace", on a shared
# 2-core machine: beat's tick and the worker's poll add up to a sweep of jitter, a task that
# was re-kicked waits behind the backlog the outage left in the queue, and every process
# competes with the fleet's 32 client threads for CPU; and process_payment for a flaky
# card includes its own 0.3 s + 0.6 s of retry backoff. See docs/reliability.md.
SLACK_SECONDS = 4.0

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl, one path for every
# gunicorn of the user: a SIGKILLed master would leave it to the next, or take another's.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if int(version("gunicorn").split(".")[0]) >= 27 else []


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
        with self.log(name).open("ab") as out:
            process = subprocess.Popen(
                argv,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = process
        return process

    def start_api(self, name: str = "api", timeout: float = 60) -> None:
        """gunicorn as in the README (threaded workers), on this port; wait for readyz."""
        process = self._spawn(
            name,
            [
                sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}", "-w", "3",
                "--threads", "4", "--graceful-timeout", "5", "--access-logfile", "-",
                *_NO_CONTROL_SOCKET, "gigco.web:create_app()",
            ],
        )  # fmt: skip
        wait_for(
            lambda: process.poll() is not None or healthy(self.base_url),
            timeout=timeout,
            every=0.1,
            what=f"gunicorn to answer {self.base_url}/readyz",
        )
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log(name).read_text()[-3000:]}")

    def start_worker(self, name: str = "worker") -> None:
        """``celery worker`` with the default prefork pool (3 processes)."""
        self._spawn(
            name,
            [
                sys.executable, "-m", "celery", "-A", "gigco.tasks", "worker",
                "--pool", "prefork", "--concurrency", "3", "-n", f"{name}@%h",
                "--loglevel", "INFO", "--without-mingle", "--without-gossip",
            ],
        )  # fmt: skip

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
        """``celery beat`` with its own schedule file."""
        self._spawn(
            name,
            [
                sys.executable, "-m", "celery", "-A", "gigco.tasks", "beat",
                "--loglevel", "INFO", "--schedule", str(self.logs / f"{name}.schedule"),
            ],
        )  # fmt: skip

    def kill(self, name: str, sig: int = signal.SIGKILL) -> float:
        """Send ``sig`` to the whole process group of ``name``; return when it was sent."""
        process = self.procs[name]
        sent_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)
        return sent_at

    def children(self, name: str) -> list[int]:
        """Process ids of the direct children of ``name`` (gunicorn's workers)."""
        pid = self.procs[name].pid
        with contextlib.suppress(OSError):
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return []

    def stop(self) -> None:
        """SIGTERM every group, SIGKILL what is left after 15 s."""
        for process in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.procs.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # Children that outlived their leader (it was killed first) go with the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
