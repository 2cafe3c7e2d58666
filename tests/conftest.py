"""Real PostgreSQL (a fresh database per run), real Redis, and a live Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco import migrate
from gigco.config import Settings, load_settings
from gigco.db import Base, make_engine, normalize_url
from tests.brokers import fresh_vhost, rabbitmq_url
from tests.support import Api, wait_for

ADMIN_TOKEN = "test-operator-token-0123456789"
# Short timers, so whole lifecycles run in seconds against the live worker.
TIMERS = {
    "GIGCO_OFFER_TTL_SECONDS": "5",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "3",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "1",
    "GIGCO_MATCH_MAX_ROUNDS": "2",
    "GIGCO_REVIEW_WINDOW_SECONDS": "4",
    "GIGCO_PAYMENT_MAX_ATTEMPTS": "3",
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": "0.3",
    "GIGCO_SWEEP_INTERVAL_SECONDS": "1",
    "GIGCO_STUCK_STEP_GRACE_SECONDS": "2",
}
KEEP_TABLES = {"categories", "alembic_version", "heartbeats"}


def _server_url() -> str:
    return os.environ.get(
        "GIGCO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def _redis_url() -> str:
    return os.environ.get("GIGCO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run, dropped afterwards."""
    server = make_engine(_server_url(), isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with server.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        pytest.exit(
            f"PostgreSQL is not reachable at {_server_url()} (set "
            f"GIGCO_TEST_DATABASE_URL): {error.orig}".strip(),
            returncode=3,
        )
    name = f"gigco_test_{uuid.uuid4().hex[:10]}"
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = str(
        sa.make_url(normalize_url(_server_url()))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    migrate.upgrade(url)
    yield url
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture(scope="session")
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """This run's broker: an empty Redis database, or with ``@both_brokers`` (tests/brokers.py)
    also a fresh RabbitMQ vhost."""
    if getattr(request, "param", "redis") == "rabbitmq":
        with fresh_vhost() as vhost:
            yield rabbitmq_url(vhost)
        return
    url = _redis_url()
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
    return {
        "GIGCO_DATABASE_URL": database_url,
        "GIGCO_BROKER_URL": broker_url,
        "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
        "GIGCO_LOG_LEVEL": "WARNING",
        **TIMERS,
    }


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


def start_worker(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A Celery worker with embedded beat in its own process group."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "gigco.tasks",
                "worker",
                "-B",
                "--pool",
                "threads",
                "--concurrency",
                "6",
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
                "--schedule",
                str(log.with_suffix(".schedule")),
                *extra,
            ],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a worker started by ``start_worker`` and its whole process group."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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


def truncate_all(engine: sa.Engine) -> None:
    """Empty every table but the seeded ones, retrying when it deadlocks with the live worker."""
    names = [t.name for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES]
    for attempt in range(1, 6):
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
            return
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "pgcode", None) != "40P01" or attempt == 5:
                raise


@pytest.fixture
def committed(engine: sa.Engine) -> Iterator[None]:
    """Tests that commit for real leave empty tables behind."""
    yield
    truncate_all(engine)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    """The Flask app on the test database."""
    from gigco.web import create_app

    return create_app(settings)


@pytest.fixture
def api(app, committed: None, live_worker: subprocess.Popen[bytes]) -> Api:  # type: ignore[no-untyped-def]
    """An API client with a live worker behind it."""
    return Api(app.test_client(), ADMIN_TOKEN)
