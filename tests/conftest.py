"""Real PostgreSQL (a fresh database per run), real Redis, and a live Celery worker."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from gigco import migrate
from gigco.config import Settings, load_settings
from gigco.db import make_engine, session_factory
from tests.brokers import fresh_vhost, rabbitmq_url
from tests.harness import database, measurements
from tests.harness.console import Ops
from tests.harness.env import ADMIN_TOKEN, live_env, redis_url, server_url
from tests.harness.http import Api
from tests.harness.polling import wait_for
from tests.harness.servers import live_server, start_worker, stop_worker

# Under pytest-xdist (``-n 2``, the default in pyproject.toml) each worker has a
# database, a Redis database (tests/harness/env.py) and a live worker of its own. A module's
# tests stay on one worker (its module-scoped gunicorn starts once). Each tier that starts
# clusters or private servers runs on one worker, one test after another, and the tiers start
# first, being the longest; the other modules fill in around them.
SERIAL_TIERS = ("tests/clusters/", "tests/resilience/")


def _group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return next((tier for tier in SERIAL_TIERS if module.startswith(tier)), module)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the items for pytest-xdist's ``loadgroup``: by module, each serial tier as one."""
    if config.getoption("dist", "no") != "loadgroup" or not config.getoption("numprocesses"):
        return
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item.nodeid)))
    items.sort(key=lambda item: not item.nodeid.startswith(SERIAL_TIERS))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the resilience and cluster scenarios measured (here, not in their tiers'
    conftests, which pytest-xdist's controller never loads)."""
    for kind in ("resilience measurements", "cluster measurements"):
        measurements.summarize(terminalreporter, kind)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, owned and migrated by a role of its own
    (no superuser), whose URL the live processes and the tests use; dropped afterwards."""
    try:
        database.check_server(server_url())
    except sa.exc.OperationalError as error:
        pytest.exit(
            f"PostgreSQL is not reachable at {server_url()} (set "
            f"GIGCO_TEST_DATABASE_URL): {error.orig}".strip(),
            returncode=3,
        )
    name = f"gigco_test_{uuid.uuid4().hex[:10]}"
    # The app's processes log in as the database's owner, no superuser: what they may read of
    # the server (pg_stat_activity) is what production's role may (tests/scale/test_feed.py).
    database.create_role(server_url(), name)
    try:
        yield database.create_database(server_url(), name, owner=name)
    finally:
        database.drop_database(server_url(), name)
        database.drop_role(server_url(), name)


@pytest.fixture(scope="session")
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """This run's broker: an empty Redis database, or with ``@both_brokers`` (tests/brokers.py)
    also a fresh RabbitMQ vhost."""
    if getattr(request, "param", "redis") == "rabbitmq":
        with fresh_vhost() as vhost:
            yield rabbitmq_url(vhost)
        return
    url = redis_url()
    try:
        redis.Redis.from_url(url, socket_timeout=2).flushdb()
    except redis.RedisError as error:
        pytest.exit(
            f"Redis is not reachable at {url} (set GIGCO_TEST_REDIS_URL): {error}", returncode=3
        )
    yield url


@pytest.fixture(scope="session")
def test_env(database_url: str, broker_url: str) -> dict[str, str]:
    """The GIGCO_* environment of this run's worker and app."""
    return live_env(database_url, broker_url)


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Settings:
    """Settings matching the live worker's."""
    return load_settings(test_env)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[sa.Engine]:
    """An engine on the test database."""
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def either_session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """The suite's rolled-back PostgreSQL session, or one on a fresh migrated SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("session")
        return
    url = f"sqlite:///{tmp_path / 'gigco.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s, s.begin():
            yield s
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions that commit for real (the worker sees what they write)."""
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back: invisible to the worker."""
    with engine.connect() as conn:
        outer = conn.begin()
        s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield s
        finally:
            s.close()
            outer.rollback()


@pytest.fixture
def isolated_sessions(session: Session) -> sessionmaker[Session]:
    """A factory whose sessions join ``session``'s rolled-back transaction."""
    return sessionmaker(
        bind=session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture(scope="session")
def live_worker(
    test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> Iterator[subprocess.Popen[bytes]]:
    """One real Celery worker (and beat) for the run, on the test database and Redis."""
    from gigco.tasks import app, configure

    configure(settings)
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = start_worker(test_env, log)
    wait_for(
        lambda: process.poll() is not None or app.control.ping(timeout=0.5),
        timeout=30,
        what="the Celery worker to answer ping",
    )
    if process.poll() is not None:
        pytest.exit(f"the Celery worker exited: {log.read_text()[-2000:]}", returncode=3)
    yield process
    stop_worker(process)


@pytest.fixture(scope="module")
def base_url(
    test_env: dict[str, str],
    live_worker: subprocess.Popen[bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The API under gunicorn on the test database, with the live worker and beat behind it
    (one per test module: the README's, the demo's and Postman's clients talk to it)."""
    with live_server(test_env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as url:
        yield url


@pytest.fixture
def committed(engine: sa.Engine) -> Iterator[None]:
    """Tests that commit for real leave empty tables behind."""
    yield
    database.truncate_all(engine)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    """The Flask app on the test database."""
    from gigco.web import create_app

    return create_app(settings)


@pytest.fixture
def api(app, committed: None, live_worker: subprocess.Popen[bytes]) -> Api:  # type: ignore[no-untyped-def]
    """An API client with a live worker behind it."""
    return Api(app.test_client(), ADMIN_TOKEN)


@pytest.fixture
def clock_app(settings: Settings) -> Flask:
    """The Flask app on the test database with test clocks on (``GIGCO_TEST_CLOCKS=1``): for
    what its routes and documents show (the run's live worker keeps them off, as production)."""
    from gigco.web import create_app

    return create_app(settings.replace(test_clocks=True))


@pytest.fixture
def isolated_app(app: Flask, isolated_sessions: sessionmaker[Session]) -> Flask:
    """The app reading and writing inside the test's rolled-back transaction (no worker sees)."""
    app.extensions["gigco_sessions"] = isolated_sessions
    app.extensions["gigco_read_sessions"] = isolated_sessions
    return app


@pytest.fixture
def row_counts(engine: sa.Engine) -> Callable[[], dict[str, int]]:
    """A function returning the committed number of rows in every table but the seeded ones."""

    def count() -> dict[str, int]:
        with engine.connect() as conn:
            return database.row_counts(conn)

    return count


@pytest.fixture
def ops(app: Flask) -> Ops:
    """A client signed in to the operators' console."""
    console = Ops(app.test_client())
    assert console.login().status_code == 303
    return console
