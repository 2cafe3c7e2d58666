"""A private PostgreSQL cluster and a private redis-server, owned by the resilience suite.

The suite stops and restarts its own cluster; the shared one on 5432 is never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis
import sqlalchemy as sa

from gigco import migrate
from gigco.db import make_engine, normalize_url
from tests.harness.polling import wait_for
from tests.harness.servers import free_port

TEMPLATE = "gigco_template"


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl live: $GIGCO_PG_BINDIR, else the newest /usr/lib/postgresql."""
    configured = os.environ.get("GIGCO_PG_BINDIR")
    candidates = [configured] if configured else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    candidates += [os.path.dirname(p) for p in [shutil.which("initdb")] if p]
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _version(bindir: str) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin, (9, 6) for …/9.6/bin."""
    name = Path(bindir).parent.name
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def cannot_run_postgres() -> str | None:
    """Why this machine cannot run a private cluster, or None when it can."""
    if postgres_bindir() is None:
        return "initdb/pg_ctl not found (install the PostgreSQL server or set GIGCO_PG_BINDIR)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no 'postgres' OS user to run initdb as"
    return None


def _as_postgres_user() -> list[str]:
    """initdb refuses to run as root: run the cluster as the ``postgres`` OS user then."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PrivatePostgres:
    """One throw-away cluster on a free port, its socket and data in a temporary directory."""

    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gigco-res-pg-")))
    port: int = field(default_factory=free_port)
    settings: tuple[str, ...] = ()  # more ``name=value`` server settings (tests/clusters)

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server log."""
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """A URL for ``database`` on this cluster."""
        return normalize_url(f"postgresql://postgres@127.0.0.1:{self.port}/{database}")

    def _run(self, *argv: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [*_as_postgres_user(), *argv], capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}")

    def init(self) -> None:
        """initdb with trust auth; durability off (the data is thrown away anyway)."""
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        ) + "".join(f" -c {setting}" for setting in self.settings)
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the cluster now (``-m fast``: open sessions are terminated)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        """True when the postmaster is up."""
        result = subprocess.run(
            [*_as_postgres_user(), str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
        )
        return result.returncode == 0

    def migrated_template(self) -> None:
        """A migrated database that each test's fresh database is copied from."""
        migrate.upgrade(self.url_for_create(TEMPLATE))

    def url_for_create(self, name: str) -> str:
        """Create database ``name`` (from the template once it exists) and return its URL."""
        server = make_engine(self.url(), isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with server.connect() as conn:
                exists = conn.scalar(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": TEMPLATE}
                )
                template = f' TEMPLATE "{TEMPLATE}"' if exists and name != TEMPLATE else ""
                conn.execute(sa.text(f'CREATE DATABASE "{name}"{template}'))
        finally:
            server.dispose()
        return self.url(name)

    def destroy(self) -> None:
        """Stop the cluster if it runs and delete its files."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if self.running():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server on a free port with persistence off, in its own process group."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gigco-res-redis-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 1) -> str:
        """The URL of Redis database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 1) -> redis.Redis:
        """A client on database ``db``."""
        return redis.Redis.from_url(self.url(db), socket_timeout=5)

    def start(self) -> None:
        """Start redis-server and wait for PING."""
        binary = shutil.which("redis-server") or "redis-server"
        with (self.root / "redis.log").open("ab") as out:
            self.process = subprocess.Popen(
                [
                    binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(self.root),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.root / 'redis.log').read_text()}")
            with contextlib.suppress(redis.RedisError):
                return bool(self.client().ping())
            return False

        wait_for(answers, timeout=20, every=0.05, what="the private redis-server")

    def destroy(self) -> None:
        """Stop redis-server and delete its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
