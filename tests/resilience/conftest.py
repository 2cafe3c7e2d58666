"""A private PostgreSQL cluster and redis-server for the run, a fresh topology per test."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gigco.broker import RECOVERY_QUEUE, STEPS_QUEUE, SWEEPS_QUEUE, WEBHOOK_QUEUE
from gigco.db import make_engine
from tests.brokers import fresh_vhost
from tests.harness import measurements
from tests.harness.env import limits_env
from tests.resilience.brokers import Broker, RabbitBroker, RedisBroker
from tests.resilience.services import (
    PrivatePostgres,
    PrivateRedis,
    cannot_run_postgres,
    postgres_bindir,
)
from tests.resilience.stack import Stack
from tests.resilience.topology import ADMIN_TOKEN, TIMERS, Topology


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """This run's own PostgreSQL cluster (stopped and restarted by tests, never the shared one)."""
    reason = cannot_run_postgres()
    if reason is not None:
        pytest.skip(reason)
    bindir = postgres_bindir()
    assert bindir is not None
    pg = PrivatePostgres(bindir)
    try:
        pg.init()
        pg.start()
        pg.migrated_template()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    """This run's own redis-server (flushed by tests, never the shared one)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found on PATH")
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Remember each phase's outcome on the item, so a failing test can dump its logs."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_configure(config: pytest.Config) -> None:
    """The markers of this suite."""
    config.addinivalue_line(
        "markers", "stack_env(**env): GIGCO_* settings of this scenario's processes"
    )


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """The scenario's broker: the private redis-server, or with
    ``@pytest.mark.parametrize("broker", BROKERS, indirect=True)`` also a RabbitMQ vhost."""
    if getattr(request, "param", "redis") == "rabbitmq":
        with fresh_vhost("gigco_res") as vhost:
            yield RabbitBroker(vhost)
        return
    server = request.getfixturevalue("private_redis")
    yield RedisBroker(server)


# Production's split (docker-compose.yml): a lifecycle worker on the steps, late steps and
# sweeps queues, and a webhooks worker on the webhooks queue.
SPLIT: dict[str, dict[str, Any]] = {
    "lifecycle": {"queues": f"{STEPS_QUEUE},{RECOVERY_QUEUE},{SWEEPS_QUEUE}"},
    "webhooks": {"queues": WEBHOOK_QUEUE, "concurrency": 1},
}


@pytest.fixture
def split(stack: Stack) -> Stack:
    """The stack with production's two kinds of worker (``SPLIT``) instead of one on every
    queue (``stack`` starts them so when a test asks for this fixture)."""
    return stack


@pytest.fixture
def stack(
    private_postgres: PrivatePostgres,
    broker: Broker,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    """gunicorn, one Celery worker and one beat on a fresh database and an empty broker."""
    name = re.sub(r"\W", "_", request.node.name)[:40] + f"_{uuid.uuid4().hex[:6]}"
    url = private_postgres.url_for_create(name)
    broker.reset()
    marker = request.node.get_closest_marker("stack_env")
    env = {
        "GIGCO_DATABASE_URL": url,
        "GIGCO_BROKER_URL": broker.url,
        "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
        "GIGCO_LOG_LEVEL": "WARNING",
        **TIMERS,
        **limits_env(),
        **(marker.kwargs if marker else {}),
    }
    topology = Topology(env=env, logs=tmp_path)
    engine = make_engine(url, pool_size=2, max_overflow=2)
    stack: Stack | None = None
    try:
        topology.start_api()
        # A test asking for ``split`` runs production's two kinds of worker from the start.
        workers = SPLIT if "split" in request.fixturenames else {"worker": {}}
        for name, options in workers.items():
            topology.start_worker(name, **options)
        topology.start_beat()
        for name in workers:
            topology.wait_worker_ready(name)
        stack = Stack(private_postgres, broker, topology, engine)
        yield stack
    finally:
        failed = getattr(request.node, "rep_call", None)
        failed = failed if failed is not None and failed.failed else None
        for fleet in stack.fleets if stack else ():
            fleet.stop(check=False)
        # The scenario is over and its database and broker are thrown away: its processes are
        # killed at once (a graceful stop cost ~4 s a test), unless it failed: then they stop
        # gracefully, so that their logs below end where they did.
        topology.stop(graceful=failed is not None)
        engine.dispose()
        if failed is not None:
            for log in sorted(tmp_path.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-40:]
                print(f"--- {log.name} (last {len(tail)} lines) ---", *tail, sep="\n")  # noqa: T201 shown in the failure report


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured number for the end-of-run summary (and the test's own output)."""
    return measurements.recorder(request, "resilience measurements")
