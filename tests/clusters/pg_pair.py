"""A PostgreSQL primary and its synchronous streaming standby, started by the test.

Both run on 127.0.0.1 on ports of their own, as the ``postgres`` OS user when the suite runs
as root (as tests/resilience/services.py does). The standby is a ``pg_basebackup -R`` of the
primary; the primary waits for it on every commit (``synchronous_standby_names = '*'``,
``synchronous_commit = on``), so a commit the primary acknowledged is on the standby too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from gigco.db import make_engine
from tests.harness.polling import wait_for
from tests.resilience.services import PrivatePostgres, postgres_bindir

# Commits wait for the standby; durability across a host crash (fsync) is not what the pair
# tests, a failover is.
# synchronous_standby_names is set once the standby streams (ALTER SYSTEM): before, every
# commit would wait for a standby that does not exist yet.
PRIMARY = ("synchronous_commit=on", "wal_level=replica")
# The standby runs without a standby of its own: promoted, it must not wait for one.
STANDBY = ("synchronous_commit=on", "hot_standby=on")


@dataclass
class PostgresPair:
    """The primary (``a``) and the standby (``b``); ``url`` names both, writable first."""

    a: PrivatePostgres = field(init=False)
    b: PrivatePostgres = field(init=False)

    def __post_init__(self) -> None:
        bindir = postgres_bindir()
        assert bindir is not None
        self.a = PrivatePostgres(bindir, settings=PRIMARY)
        self.b = PrivatePostgres(bindir, settings=STANDBY)

    def start(self) -> None:
        """initdb and start the primary, migrate the template, clone and start the standby,
        and wait until the primary reports it as its synchronous standby."""
        self.a.init()
        self.a.start()
        self.a.migrated_template()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.b.root, owner.pw_uid, owner.pw_gid)
        self.a._run(
            str(self.a.bindir / "pg_basebackup"),
            "-h", "127.0.0.1", "-p", str(self.a.port), "-U", "postgres",
            "-D", str(self.b.data), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
        )  # fmt: skip
        self.b.start()
        self._sql(self.a, "ALTER SYSTEM SET synchronous_standby_names = '*'")
        self._sql(self.a, "SELECT pg_reload_conf()")
        wait_for(
            lambda: self.sync_state() == "sync",
            timeout=30,
            every=0.1,
            what="the standby to stream synchronously",
        )

    def sync_state(self) -> str | None:
        """The standby's ``sync_state`` as the primary reports it."""
        return self._sql(self.a, "SELECT sync_state FROM pg_stat_replication")

    @staticmethod
    def _sql(node: PrivatePostgres, sql: str) -> str | None:
        engine = make_engine(node.url(), isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(sql))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    def create(self, name: str) -> str:
        """Create database ``name`` on the primary; the multi-host URL of it."""
        self.a.url_for_create(name)
        return self.url(name)

    def url(self, database: str) -> str:
        """libpq's host-list form: both hosts, the writable one chosen on each connect."""
        return (
            f"postgresql://postgres@127.0.0.1:{self.a.port},127.0.0.1:{self.b.port}/{database}"
            "?target_session_attrs=read-write"
        )

    def crash_primary(self) -> float:
        """Stop the primary as a crash does (``-m immediate``); return when it was gone: its
        postmaster and every backend it had (``pg_ctl -w`` waits for the postmaster only; a
        backend on a loaded machine may answer one more statement after that)."""
        processes = _postmaster_and_children(self.a.data)
        self.a._run(str(self.a.bindir / "pg_ctl"), "-D", str(self.a.data), "-m", "immediate",
                    "-w", "stop")  # fmt: skip
        wait_for(
            lambda: not any(_alive(pid) for pid in processes),
            timeout=30,
            every=0.01,
            what="the primary's backends to be gone",
        )
        return time.time()

    def promote_standby(self) -> float:
        """Promote the standby and wait until it accepts writes; return that time."""
        self.b._run(str(self.b.bindir / "pg_ctl"), "-D", str(self.b.data), "-w", "promote")
        return time.time()

    def destroy(self) -> None:
        """Stop both and delete their files."""
        for node in (self.a, self.b):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                node.destroy()
            shutil.rmtree(node.root, ignore_errors=True)


def _postmaster_and_children(data: Path) -> list[int]:
    """The PIDs of the postmaster of data directory ``data`` and of its children."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *(int(pid) for pid in children)]


def _alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie awaiting its reaping is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
