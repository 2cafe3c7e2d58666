"""The cluster tier: tests that start clusters of their own (a PostgreSQL primary and standby,
a three-node RabbitMQ cluster) under GigCo's live topology, and break them.

Each test starts what it needs and stops it; the machine's own services are never touched.
A test skips, saying why, only when a binary it needs is absent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gigco.db import make_engine
from tests.clusters.pg_pair import PostgresPair
from tests.harness import measurements
from tests.harness.env import limits_env
from tests.resilience.brokers import Broker, RedisBroker
from tests.resilience.conftest import (  # noqa: F401  (fixtures used here)
    private_postgres,
    private_redis,
)
from tests.resilience.services import PrivateRedis, cannot_run_postgres, postgres_bindir
from tests.resilience.stack import Stack
from tests.resilience.topology import ADMIN_TOKEN, TIMERS, Topology


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Remember each phase's outcome on the item, so a failing test can dump its logs."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def postgres_binaries() -> None:
    """Skip, saying why, when this machine cannot run a PostgreSQL cluster of its own."""
    reason = cannot_run_postgres()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def pair(postgres_binaries: None) -> Iterator[PostgresPair]:
    """A primary and its synchronous streaming standby."""
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "pg_basebackup").exists():
        pytest.skip("pg_basebackup not found beside initdb (install the PostgreSQL server)")
    pg = PostgresPair()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def redis_broker(private_redis: PrivateRedis) -> RedisBroker:  # noqa: F811
    """Database 1 of the suite's private redis-server, emptied."""
    broker = RedisBroker(private_redis)
    broker.reset()
    return broker


@pytest.fixture
def launch(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    """``launch(database_url, broker, **env)``: gunicorn, one Celery worker and one beat on
    ``database_url`` and ``broker``; stopped (and their logs shown on failure) at the end.
    The test's own engine uses ``observer_url`` when given (a path around a broken proxy)."""
    stacks: list[Stack] = []

    def start(
        database_url: str, broker: Broker, *, observer_url: str | None = None, **env: str
    ) -> Stack:
        topology = Topology(
            env={
                "GIGCO_DATABASE_URL": database_url,
                "GIGCO_BROKER_URL": broker.url,
                "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
                "GIGCO_LOG_LEVEL": "WARNING",
                **TIMERS,
                **limits_env(),  # limits it never meets, counted on the suite's Redis
                **env,
            },
            logs=tmp_path,
        )
        engine = make_engine(observer_url or database_url, pool_size=2, max_overflow=2)
        stack = Stack(None, broker, topology, engine)  # type: ignore[arg-type]
        stacks.append(stack)
        topology.start_api()
        topology.start_worker()
        topology.start_beat()
        topology.wait_worker_ready()
        return stack

    try:
        yield start
    finally:
        failed = getattr(request.node, "rep_call", None)
        failed = failed if failed is not None and failed.failed else None
        for stack in stacks:
            for fleet in stack.fleets:
                fleet.stop(check=False)
            # Killed at once unless the scenario failed (tests/resilience/conftest.py).
            stack.topology.stop(graceful=failed is not None)
            stack.engine.dispose()
        if failed is not None:
            for log in sorted(tmp_path.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-40:]
                print(f"--- {log.name} (last {len(tail)} lines) ---", *tail, sep="\n")  # noqa: T201 shown in the failure report


def unique_name(request: pytest.FixtureRequest) -> str:
    """A database name for this test."""
    return re.sub(r"\W", "_", request.node.name)[:40] + f"_{uuid.uuid4().hex[:6]}"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured number for the end-of-run summary (and the test's own output)."""
    return measurements.recorder(request, "cluster measurements")
