"""Declarative base, engine and session factory, and the after-commit enqueue hook."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import select
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.visitors import InternalTraversal

from gigco import clock, db_wait
from gigco.config import host_list_as_query

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Base of every model; constraint names follow NAMING_CONVENTION."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


def _null_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as SQL calls it: NULL in, NULL out."""
    return lambda *args: None if any(a is None for a in args) else fn(*args)


def _least(*args: Any) -> Any:
    """PostgreSQL's ``least``: the smallest argument, NULLs ignored."""
    present = [a for a in args if a is not None]
    return min(present) if present else None


# The math functions statements shared with PostgreSQL use (matching's haversine); SQLite
# has them only when built with SQLITE_ENABLE_MATH_FUNCTIONS.
_SQLITE_MATH: dict[str, tuple[int, Callable[..., float]]] = {
    "radians": (1, math.radians),
    "sin": (1, math.sin),
    "cos": (1, math.cos),
    "asin": (1, math.asin),
    "sqrt": (1, math.sqrt),
    "power": (2, math.pow),
}


@cache
def _sqlite_has_math() -> bool:
    import sqlite3

    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("SELECT radians(1), sin(1), cos(1), asin(1), sqrt(1), power(1, 1)")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


# How SQLAlchemy's SQLite DateTime stores a timestamp (the format that sorts as time does).
_SQLITE_STORED = "%Y-%m-%d %H:%M:%S.%f"


def _late_claim(now: str, timer_at: str, cap_seconds: float) -> str:
    """``gigco.lifecycle.timers.late_claim`` on SQLite's stored timestamps."""
    at, due = dt.datetime.fromisoformat(now), dt.datetime.fromisoformat(timer_at)
    claim = at + min(at - due, dt.timedelta(seconds=cap_seconds))
    return claim.strftime(_SQLITE_STORED)


def _sqlite_functions(dbapi_connection: Any) -> None:
    # What PostgreSQL has and SQLite lacks, so that one statement serves both dialects.
    dbapi_connection.create_function("least", -1, _least, deterministic=True)
    dbapi_connection.create_function(
        "gigco_late_claim", 3, _null_safe(_late_claim), deterministic=True
    )
    if not _sqlite_has_math():
        for name, (arity, fn) in _SQLITE_MATH.items():
            dbapi_connection.create_function(name, arity, _null_safe(fn), deterministic=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling begins only before a write, so a step's reads
    # (its "row lock" included) would run outside its transaction; SQLAlchemy's "begin" event
    # starts every transaction instead (SQLAlchemy's pysqlite "Serializable isolation"
    # recipe). An AUTOCOMMIT engine sets this itself and never begins.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    _sqlite_functions(dbapi_connection)


def normalize_url(url: str) -> str:
    """Pin plain ``postgresql://`` URLs to psycopg2 (SQLAlchemy 2.1 defaults to psycopg 3), a
    libpq host list (``@h1:5432,h2:5432/db``) rewritten to the query form SQLAlchemy parses."""
    url = host_list_as_query(url)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


CONNECT_TIMEOUT_SECONDS = 5


def _begin_immediate(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(
    url: str,
    *,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int | None = None,
    replica: bool = False,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys.

    A ``replica`` engine (a standby's) gets the same checkout check and the same client-side
    bound on every round trip, but its clock readings are not the clock: time has one door,
    the primary's (``gigco.clock``), where deadlines are written.

    On PostgreSQL every connection gets ``statement_timeout`` and ``lock_timeout`` when
    given: a statement past them fails (an OperationalError, a 503 in the API) instead of
    waiting forever on a row lock.

    On SQLite every transaction is ``BEGIN IMMEDIATE``: it takes the database's write lock
    at its start, so transactions that write are serialised whole, reads included. That
    is what ``lock_job``'s ``FOR UPDATE`` (a no-op there) gives a job's steps on
    PostgreSQL; readers on the AUTOCOMMIT engine are not held up (WAL).
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if kwargs.get("isolation_level") != "AUTOCOMMIT":
            event.listen(engine, "begin", _begin_immediate)
        return engine
    # The checkout check (_read_the_clock) costs a round trip, as the pool_pre_ping it
    # replaces did, and is kept for a connection that has been idle: without it one the
    # server dropped meanwhile (a restart, a killed backend) fails the next request with a
    # 503 instead of being replaced (tests/resilience/test_postgres_restart.py). A connection
    # back in the pool for less than ALIVE_BYPASS_SECONDS skips it (see there). It also
    # reads the database's clock for gigco.clock.
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    options = " ".join(
        f"-c {name}={value}"
        for name, value in (
            ("statement_timeout", statement_timeout_ms),
            ("lock_timeout", lock_timeout_ms),
        )
        if value
    )
    # With a statement timeout, every round trip is bounded on the client too (db_wait): a
    # silent server cannot hold a request or a step past that timeout plus a margin.
    if statement_timeout_ms:
        db_wait.install()
    connect_args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "connection_factory": db_wait.bounded_connection(
            statement_timeout_ms, CONNECT_TIMEOUT_SECONDS
        ),
    } | ({"options": options} if options else {})
    kwargs.setdefault("connect_args", connect_args)
    engine = sa.create_engine(url, **kwargs)
    event.listen(engine, "checkin", _checked_in)
    if replica:
        event.listen(engine, "checkout", _check_alive)
        return engine
    event.listen(engine, "checkout", _read_the_clock)
    clock.calibrate_with(lambda: engine.connect().close())
    return engine


# HikariCP's aliveBypassWindowMs, with its default: a connection handed back to the pool this
# recently answered its last statement a moment ago, so checking it again would cost a round
# trip on nearly every checkout of a busy process (a sixth of a lifecycle's round trips,
# docs/benchmarks.md). Unless its socket has something to read: a server that ended the
# connection (a killed backend, a restart) said so, and the check then finds it dead and
# replaces it (the EOF check of Go's MySQL driver, without a round trip). A server that
# vanished without a word within the window is met by the first statement, as any statement
# meets an outage: a 503 in the API, a retried step in the worker.
ALIVE_BYPASS_SECONDS = 0.5
# However busy the process, the database's clock is read at least this often.
CLOCK_READING_SECONDS = 1.0
_CHECKED_IN = "gigco_checked_in"
_checks_sent = 0


def checkout_checks() -> int:
    """How many checkout checks this process has sent (what a benchmark's meter counts)."""
    return _checks_sent


def _checked_in(dbapi_connection: Any, record: Any) -> None:
    """Remember when the connection came back to the pool (after its reset's ROLLBACK)."""
    if dbapi_connection is not None:
        record.info[_CHECKED_IN] = time.monotonic()


def _answered_just_now(dbapi_connection: Any, record: Any) -> bool:
    """True when the connection came back within ``ALIVE_BYPASS_SECONDS`` and the server has
    sent nothing since (an idle connection's socket has nothing to read)."""
    back = record.info.get(_CHECKED_IN)
    if back is None or time.monotonic() - back >= ALIVE_BYPASS_SECONDS:
        return False
    said = select.poll()
    said.register(dbapi_connection.fileno(), select.POLLIN)
    return not said.poll(0)


def _check_alive(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A replica's checkout check: the primary's round trip, its clock reading dropped."""
    if not _answered_just_now(dbapi_connection, record):
        _ask_the_clock(dbapi_connection)


def _read_the_clock(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A checkout asks the server for its clock (``gigco.clock.observe``), unless the
    connection answered just now (``ALIVE_BYPASS_SECONDS``) and the clock was read within
    ``CLOCK_READING_SECONDS``: one round trip, which also proves the connection alive."""
    if _answered_just_now(dbapi_connection, record) and clock.reading_age() < CLOCK_READING_SECONDS:
        return
    clock.observe(*_ask_the_clock(dbapi_connection))


def _ask_the_clock(dbapi_connection: Any) -> tuple[float, dt.datetime, float]:
    """``SELECT clock_timestamp()`` with the host's time before and after. A dead connection
    raises DisconnectionError, on which the pool invalidates it and checks out another (up
    to three times), as ``pool_pre_ping`` did. Run in autocommit, so it opens no transaction
    (psycopg2's ``autocommit`` is a client-side flag: no round trip)."""
    global _checks_sent
    _checks_sent += 1
    was_autocommit = dbapi_connection.autocommit
    try:
        if not was_autocommit:
            dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            sent = time.time()
            cursor.execute("SELECT clock_timestamp()")
            (database_time,) = cursor.fetchone()
            received = time.time()
        if not was_autocommit:
            dbapi_connection.autocommit = False
    except Exception as error:
        raise sa.exc.DisconnectionError(f"connection failed its checkout check: {error}") from error
    return sent, database_time, received


@cache
def engine_for(
    url: str,
    *,
    autocommit: bool = False,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int | None = None,
    replica: bool = False,
) -> Engine:
    """One engine per URL (and timeouts) per process; ``autocommit`` ones run each statement
    on its own; a ``replica`` one is a standby's (``make_engine``).

    An autocommit engine is for reads that need no transaction: it saves the BEGIN and the
    ROLLBACK round trips around them.
    """
    timeouts = {"statement_timeout_ms": statement_timeout_ms, "lock_timeout_ms": lock_timeout_ms}
    if autocommit:
        return make_engine(url, isolation_level="AUTOCOMMIT", replica=replica, **timeouts)
    return make_engine(url, replica=replica, **timeouts)


class ClaimedIds(sa.ColumnElement[bool]):
    """``column`` is one of the ids ``claim`` takes (a ``LIMIT … FOR UPDATE SKIP LOCKED``
    select), for ``UPDATE … WHERE``: the claim runs once, and the UPDATE finds its rows by
    primary key, whatever the table's statistics say.

    On PostgreSQL it is ``column = ANY(ARRAY(claim))``: the claim is an InitPlan (run once)
    and its ids an index condition. ``column IN (claim)`` let the planner, told by its
    statistics that the table was nearly empty, join the claim in a nested loop: re-run for
    every row the UPDATE scanned, each run skipping the rows already changed and locking the
    next ``LIMIT`` (one sweep with a batch of 1,000 claimed a 20,000-row backlog); and as a
    CTE, compared against every row of the table (3 s a batch). SQLite runs ``IN`` once.
    """

    inherit_cache = True
    type = sa.Boolean()
    _is_implicitly_boolean = True  # a comparison: no "= 1" after it on SQLite
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("claim", InternalTraversal.dp_clauseelement),
    ]

    def __init__(
        self, column: sa.ColumnElement[Any] | QueryableAttribute[Any], claim: sa.Select[Any]
    ) -> None:
        self.column = coercions.expect(roles.ExpressionElementRole, column)
        self.claim = claim.scalar_subquery()


@compiles(ClaimedIds)
def _claimed_in(element: ClaimedIds, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(element.claim), **kw))


@compiles(ClaimedIds, "postgresql")
def _claimed_any(element: ClaimedIds, compiler: Any, **kw: Any) -> str:
    column, claim = compiler.process(element.column, **kw), compiler.process(element.claim, **kw)
    return f"{column} = ANY(ARRAY{claim})"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


_AFTER_COMMIT = "gigco_after_commit"


def enqueue_after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run ``callback`` once the session's current transaction commits; drop it on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    # The commit already happened: a failing callback (say, the broker is down) is logged
    # and left to the sweeper, which finds the step's due time in the database.
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:
            log.exception("after-commit callback failed; the sweeper will retry the step")


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


T = TypeVar("T")


def built_once(build: Callable[..., T]) -> Callable[..., T]:
    """Cache what a statement builder returns per arguments, built and compiled once under a
    lock. Threads share the cached statements, and SQLAlchemy memoizes parts of an ORM
    statement's first compile on the statement itself: two threads compiling one shared
    statement for the first time at once can leave it a cartesian product (docs/benchmarks.md,
    "A slow webhook receiver"). The compile here warms it before any thread runs it."""
    built: dict[tuple[Any, ...], T] = {}
    lock = threading.Lock()

    @functools.wraps(build)
    def get(*args: Any) -> T:
        try:
            return built[args]
        except KeyError:
            pass
        with lock:
            if args not in built:
                value = build(*args)
                statements: tuple[Any, ...] = value if isinstance(value, tuple) else (value,)
                for stmt in statements:
                    stmt.compile(dialect=postgresql.dialect())
                built[args] = value
            return built[args]

    return get
