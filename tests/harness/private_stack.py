"""A whole GigCo of a test's own: a fresh database, a private redis-server, gunicorn and a
worker with beat. No other worker of the run shares its broker, so none takes its tasks."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from gigco import processes
from tests.harness import database
from tests.harness.env import live_env, server_url
from tests.harness.http import Client, Journal, healthy
from tests.harness.polling import wait_for
from tests.harness.servers import free_port, gunicorn_argv, worker_argv
from tests.resilience.services import PrivateRedis


@contextmanager
def private_stack(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    worker_prefix: tuple[str, ...] = (),
    api_prefix: tuple[str, ...] = (),
) -> Iterator[Client]:
    """Start the stack with ``env`` over the run's usual settings; yield a client of its API.

    ``worker_prefix``/``api_prefix`` run the worker or gunicorn under another program (say,
    ``faketime -f +30s``)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found on PATH (a private stack runs its own)")
    name = f"gigco_stack_{uuid.uuid4().hex[:10]}"
    url = database.create_database(server_url(), name)
    redis = PrivateRedis()
    redis.start()
    full_env = {**live_env(url, redis.url()), "GIGCO_LOG_LEVEL": "INFO", **(env or {})}
    port = free_port()
    worker_cmd = worker_argv(
        "-B", "--pool", "threads", "--concurrency", "4",
        "--schedule", str(tmp_path / "beat.schedule"), loglevel="INFO",
    )  # fmt: skip
    started = []
    try:
        started.append(
            processes.start(
                [*worker_prefix, *worker_cmd], env=full_env, log=tmp_path / "worker.log"
            )
        )
        started.append(
            processes.start(
                [*api_prefix, *gunicorn_argv(port, workers=1)],
                env=full_env,
                log=tmp_path / "gunicorn.log",
            )
        )
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: healthy(base_url), timeout=30, what=f"gunicorn at {base_url}")
        yield Client(base_url, Journal())
    finally:
        for process in started:
            processes.stop(process, timeout=10)
        redis.destroy()
        database.drop_database(server_url(), name)
