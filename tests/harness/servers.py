"""The production processes, started for a test or a benchmark: gunicorn, Celery worker, beat.

Each runs in its own process group (``gigco.processes``), so stopping or killing the group
takes its children (gunicorn workers, prefork pool processes) with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from gigco import processes
from gigco.processes import free_port
from tests.harness.http import healthy
from tests.harness.polling import wait_for

__all__ = [
    "NO_CONTROL_SOCKET",
    "beat_argv",
    "free_port",
    "gunicorn_argv",
    "live_server",
    "start_worker",
    "stop_worker",
    "worker_argv",
]

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl, one path for every
# gunicorn of the user: concurrent servers would fight over it, and a SIGKILLed master
# would leave it to the next.
NO_CONTROL_SOCKET = ["--no-control-socket"] if int(version("gunicorn").split(".")[0]) >= 27 else []


def gunicorn_argv(
    port: int, *, workers: int = 2, threads: int | None = None, extra: tuple[str, ...] = ()
) -> list[str]:
    """``gunicorn 'gigco.web:create_app()'`` on 127.0.0.1:``port``, as in the README."""
    argv = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    return [*argv, *extra, *NO_CONTROL_SOCKET, "gigco.web:create_app()"]


def worker_argv(*extra: str, loglevel: str = "WARNING") -> list[str]:
    """``celery -A gigco.tasks worker`` without mingle and gossip (faster start), plus ``extra``."""
    return [
        sys.executable, "-m", "celery", "-A", "gigco.tasks", "worker",
        "--loglevel", loglevel, "--without-mingle", "--without-gossip", *extra,
    ]  # fmt: skip


def beat_argv(schedule: Path, *, loglevel: str = "WARNING") -> list[str]:
    """``celery -A gigco.tasks beat`` with its own schedule file."""
    return [
        sys.executable, "-m", "celery", "-A", "gigco.tasks", "beat",
        "--loglevel", loglevel, "--schedule", str(schedule),
    ]  # fmt: skip


def start_worker(env: Mapping[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """The test run's worker: threads, embedded beat, ``extra`` arguments last."""
    argv = worker_argv(
        "-B", "--pool", "threads", "--concurrency", "6",
        "--schedule", str(log.with_suffix(".schedule")), *extra,
    )  # fmt: skip
    return processes.start(argv, env={**os.environ, **env}, log=log)


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop a worker started by ``start_worker`` and its whole process group."""
    processes.stop(process, timeout=timeout)


@contextmanager
def live_server(
    env: Mapping[str, str],
    log: Path,
    *,
    workers: int = 2,
    threads: int | None = None,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run gunicorn with ``env``; yield its base URL once healthy, stop its group on exit.

    With ``threads`` its workers are gthread ones, which keep connections alive (as the
    Dockerfile's); without, sync ones, which close each connection after its answer.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    argv = gunicorn_argv(
        port,
        workers=workers,
        threads=threads,
        extra=("--graceful-timeout", "5", "--access-logfile", "-"),
    )
    process = processes.start(argv, env={**os.environ, **env}, log=log)
    try:
        wait_for(
            lambda: process.poll() is not None or healthy(base_url),
            timeout=timeout,
            every=0.1,
            what=f"gunicorn to answer {base_url}/readyz",
        )
        if process.poll() is not None:
            raise AssertionError(
                f"gunicorn exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        yield base_url
    finally:
        processes.stop(process, timeout=10)
