"""Fresh migrated PostgreSQL databases, emptying them, and counting their rows."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import migrate
from gigco.db import Base, make_engine, normalize_url

# Seeded by the migrations, or (lifecycle policies) immutable rows that processes remember:
# never emptied or counted.
KEEP_TABLES = frozenset({"categories", "alembic_version", "heartbeats", "lifecycle_policies"})


def url_of(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``server_url``."""
    url = sa.make_url(normalize_url(server_url)).set(database=name)
    return str(url.render_as_string(hide_password=False))


def check_server(server_url: str) -> None:
    """Raise sqlalchemy's OperationalError unless the server answers."""
    server = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with server.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        server.dispose()


# Extensions the migrations create that PostgreSQL does not let a database owner create
# (earthdistance is not "trusted"): made by the server's superuser first, as a DBA would.
UNTRUSTED_EXTENSIONS = ("cube", "earthdistance")


def create_database(
    server_url: str,
    name: str,
    *,
    replace: bool = False,
    migrated: bool = True,
    owner: str | None = None,
) -> str:
    """Create database ``name`` (dropping one of that name first with ``replace``), migrate it
    to head unless told not to, and return its URL. With ``owner`` (a role made by
    ``create_role``) the database is that role's, and the URL, migrations included, logs in
    as it: as production runs, not as a superuser."""
    server = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with server.connect() as conn:
            if replace:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(
                sa.text(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
            )
    finally:
        server.dispose()
    url = url_of(server_url, name)
    if owner:
        superuser = make_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with superuser.connect() as conn:
                for extension in UNTRUSTED_EXTENSIONS:
                    conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {extension}"))
        finally:
            superuser.dispose()
        url = str(sa.make_url(url).set(username=owner, password=None).render_as_string(False))
    if migrated:
        migrate.upgrade(url)
    return url


def create_role(server_url: str, name: str) -> None:
    """A login role that is no superuser and not in ``pg_read_all_stats``: it sees only its
    own backends in pg_stat_activity, as a production application's role does."""
    server = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'))
    finally:
        server.dispose()


def drop_role(server_url: str, name: str) -> None:
    """Drop role ``name`` (its databases dropped first)."""
    server = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
    finally:
        server.dispose()


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name``, closing its connections."""
    server = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        server.dispose()


def data_tables() -> list[sa.Table]:
    """Every table the product writes (all but the seeded ones), in dependency order."""
    return [t for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES]


def _emptying() -> str:
    """One script that empties every data table (children first).

    ``DELETE`` of a test's few rows costs a tenth of ``TRUNCATE``, which makes new files for
    every one of the tables. The ids go on from where they were, never restarting within a
    run: a step message the live worker still holds for an earlier test's job (an ETA it has
    prefetched, a re-sent deadline) then finds no job under that id, where with restarted ids
    it acted on the next test's job of the same id (a race test saw its job matched by a
    match_job it never sent)."""
    return "; ".join(f"DELETE FROM {t.name}" for t in reversed(data_tables()))


def truncate_all(engine: sa.Engine) -> None:
    """Empty every table but the seeded ones, retrying when it deadlocks with a live worker."""
    # A live worker's step locks a row of one table and then reads another: emptying the
    # tables one by one may meet it the other way round; PostgreSQL ends one of the two
    # (ours), and the next try usually finds the worker between steps. On a loaded machine
    # five tries were seen to lose five times, hence twenty, each after a pause that grows.
    attempts = 20
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(_emptying())
            return
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "pgcode", None) != "40P01" or attempt == attempts:
                raise
            time.sleep(0.05 * attempt)  # a back-off between tries, not a wait for a state


def row_counts(db: Session | sa.Connection) -> dict[str, int]:
    """The number of rows in every table but the seeded ones, as ``db`` sees them."""
    return {
        t.name: db.scalar(sa.select(sa.func.count()).select_from(t)) or 0 for t in data_tables()
    }
