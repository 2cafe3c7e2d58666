"""The pool's checkout check (``gigco.db``): a connection that has sat in the pool is proven
alive, and the database's clock read, before a request or a step uses it; one handed back a
moment ago (HikariCP's "alive bypass window") is not asked again, which saves a round trip
on nearly every checkout of a busy process."""

from __future__ import annotations

import time

import sqlalchemy as sa

from gigco import clock
from gigco.config import Settings
from gigco.db import ALIVE_BYPASS_SECONDS, CLOCK_READING_SECONDS, make_engine

LAST_STATEMENT = sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid")


def test_a_connection_back_a_moment_ago_is_not_checked_and_one_idle_longer_is(
    settings: Settings,
) -> None:
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    watcher = make_engine(settings.database_url, isolation_level="AUTOCOMMIT", pool_size=1)

    def last_statement(pid: int) -> str:
        with watcher.connect() as conn:
            return str(conn.scalar(LAST_STATEMENT, {"pid": pid}))

    try:
        with engine.connect() as conn:  # a new connection: checked, the clock read
            pid = conn.scalar(sa.text("SELECT pg_backend_pid()"))
        assert last_statement(pid) == "ROLLBACK"  # the pool's reset as it came back
        with engine.connect():  # the same connection at once: not asked again
            assert last_statement(pid) == "ROLLBACK"
        assert clock.reading_age() < CLOCK_READING_SECONDS

        time.sleep(ALIVE_BYPASS_SECONDS + 0.1)  # the connection sits in the pool past the window
        with engine.connect():
            assert last_statement(pid) == "SELECT clock_timestamp()"
    finally:
        engine.dispose()
        watcher.dispose()


def test_a_busy_process_still_reads_the_clock_every_second(settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        deadline = time.monotonic() + 3 * CLOCK_READING_SECONDS
        ages = []
        while time.monotonic() < deadline:  # a checkout every 50 ms: never idle in the window
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            ages.append(clock.reading_age())
            time.sleep(0.05)
        assert max(ages) < CLOCK_READING_SECONDS + 0.1
    finally:
        engine.dispose()
