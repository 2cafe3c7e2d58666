"""Starts GigCo's production topology for a benchmark: a fresh database, gunicorn, one
Celery worker and one beat, on the local PostgreSQL and Redis, and stops it again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis

from gigco import processes
from gigco.processes import free_port
from tests.harness.database import create_database, url_of
from tests.harness.env import UNMET_LIMITS
from tests.harness.http import healthy
from tests.harness.polling import wait_for
from tests.harness.servers import beat_argv, gunicorn_argv, worker_argv

SERVER_URL = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/4")
# A hot standby of BENCH_PG's server: its copy of the bench's database is the API's
# GIGCO_READ_DATABASE_URL (docs/benchmarks.md, "A read replica").
REPLICA_URL = os.environ.get("BENCH_PG_REPLICA")
ADMIN_TOKEN = "bench-operator-token-0123456789"


def fresh_database(name: str) -> str:
    """Drop and re-create database ``name``, migrate it, and return its URL."""
    return create_database(SERVER_URL, name, replace=True)


@dataclass
class Topology:
    """The processes of one benchmark run and how to reach them."""

    env: dict[str, str]
    base_url: str
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    profile: Path | None = None  # py-spy the API and the worker into this folder

    def start(self, name: str, argv: list[str]) -> None:
        """Start ``argv`` in its own process group, logging to ``logs/name.log``.

        With ``profile`` set, the API and the worker run under ``py-spy record`` (it can
        only sample processes it starts here), which writes ``profile/name.txt`` on exit.
        """
        self.commands[name] = argv
        if self.profile and name in ("api", "worker"):
            self.profile.mkdir(parents=True, exist_ok=True)
            spy = str(Path(sys.executable).with_name("py-spy"))
            out = str(self.profile / f"{name}.txt")
            argv = [spy, "record", "--subprocesses", "--nonblocking", "--gil", "--rate", "100"]
            argv += ["--format", "raw", "-o", out, "--", *self.commands[name]]
        self.procs[name] = processes.start(argv, env=self.env, log=self.logs / f"{name}.log")

    def restart(self, name: str) -> None:
        """Start ``name`` again with the command it was first started with."""
        self.start(name, self.commands[name])

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each process tree, PostgreSQL, Redis and the box."""
        out: dict[str, float] = {}
        for name, proc in self.procs.items():
            out[name] = _tree_cpu(proc.pid)
        out["postgres"] = sum(
            _cpu(p)
            for p in psutil.process_iter(["name"])
            if (p.info["name"] or "").startswith("postgres")
        )
        out["redis"] = sum(
            _cpu(p)
            for p in psutil.process_iter(["name"])
            if (p.info["name"] or "").startswith("redis-server")
        )
        out["driver"] = _cpu(psutil.Process())
        times = psutil.cpu_times()
        out["box"] = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        return out

    def stop(self) -> None:
        """SIGTERM each leader (a warm shutdown), SIGKILL its group if it lingers past 15 s."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                if self.profile and psutil.Process(proc.pid).name() == "py-spy":
                    for child in psutil.Process(proc.pid).children():
                        child.send_signal(signal.SIGTERM)  # py-spy writes when they exit
                else:
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            processes.reap(proc, timeout=15)


def _cpu(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def _tree_cpu(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        return _cpu(root) + sum(_cpu(c) for c in root.children(recursive=True))
    except psutil.Error:
        return 0.0


def cpu_delta(a: dict[str, float], b: dict[str, float], wall: float) -> dict[str, str]:
    """CPU used between two ``cpu_seconds`` readings, in cores."""
    return {k: f"{(b[k] - a.get(k, 0.0)) / wall:.2f}" for k in b}


def cpu_ms_per(a: dict[str, float], b: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per item (a lifecycle) between two ``cpu_seconds`` readings, per
    process and in all (``total``: every process but the driver; ``box``: the machine's
    accounting less the driver, which also counts anything else running)."""
    used = {k: (b[k] - a.get(k, 0.0)) * 1000 / max(1, n) for k in b}
    out = {k: round(v, 1) for k, v in used.items() if k not in ("box", "driver")}
    out["total"] = round(sum(out.values()), 1)
    out["box"] = round(used["box"] - used["driver"], 1)
    return out


# The README's production topology on this 2-core machine: a gunicorn process per core with
# four threads each, and the lifecycle worker on four threads.
WEB_WORKERS, WEB_THREADS = 2, 4
WORKER_ARGS = ("--pool", "threads", "--concurrency", "4")


@contextlib.contextmanager
def production(
    *,
    timers: dict[str, str] | None = None,
    web_workers: int = WEB_WORKERS,
    web_threads: int = WEB_THREADS,
    web_class: str = "gthread",
    worker_args: tuple[str, ...] = WORKER_ARGS,
    database: str = "gigco_bench",
    logs: Path | None = None,
    profile: Path | None = None,
) -> Iterator[Topology]:
    """gunicorn + one Celery worker + one beat on a fresh database and an empty Redis DB."""
    # `timeout` and Ctrl-C must not leave a worker behind on the shared broker database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    url = fresh_database(database)
    redis.Redis.from_url(REDIS_URL).flushdb()
    logs = logs or Path("/tmp/gigco-bench") / time.strftime("%Y%m%dT%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        # Counted on the broker's Redis like production's, at limits a benchmark never meets
        # (GIGCO_RATE_LIMIT_*=off in the environment measures the API without them).
        **UNMET_LIMITS,
        **os.environ,
        "GIGCO_DATABASE_URL": url,
        "GIGCO_BROKER_URL": REDIS_URL,
        "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
        "GIGCO_LOG_LEVEL": "WARNING",
        "GIGCO_SWEEP_INTERVAL_SECONDS": "1",
        "GIGCO_STUCK_STEP_GRACE_SECONDS": "10",
        **(timers or {}),
    }
    if REPLICA_URL:
        env["GIGCO_READ_DATABASE_URL"] = url_of(REPLICA_URL, database)
    topo = Topology(env=env, base_url=f"http://127.0.0.1:{port}", logs=logs, profile=profile)
    try:
        gunicorn_log = os.environ.get("BENCH_GUNICORN_LOG", "warning")
        topo.start(
            "api",
            gunicorn_argv(
                port,
                workers=web_workers,
                threads=web_threads,
                extra=("-k", web_class, "--keep-alive", "120", "--log-level", gunicorn_log),
            ),
        )
        topo.start("worker", worker_argv(*worker_args))
        topo.start("beat", beat_argv(logs / "celerybeat-schedule"))
        _wait_healthy(topo)
        yield topo
    finally:
        topo.stop()


def _wait_healthy(topo: Topology, timeout: float = 30) -> None:
    def up() -> bool:
        for name, proc in topo.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {topo.logs / (name + '.log')}")
        return healthy(topo.base_url)

    wait_for(up, timeout=timeout, every=0.1, what=f"the API to be healthy; see {topo.logs}")
