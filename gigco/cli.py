"""The ``gigco`` command: ``gigco dev``, ``gigco db upgrade``, ``gigco demo``, ``gigco health``,
``gigco token issue``, ``gigco seed``, ``gigco settings``."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

import gigco
from gigco import clock, dev_instance, processes
from gigco.config import ConfigError, Settings, documented, load_settings
from gigco.seed import CITIES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
@click.version_option(gigco.__version__, prog_name="gigco")
def main() -> None:
    """GigCo: a gig marketplace on Flask, PostgreSQL and Celery."""


@main.group()
def db() -> None:
    """Database migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = _settings()
    _ensure_data_dir(settings)
    _migrate(settings, revision)
    click.echo(f"database at {revision}")


def _migrate(settings: Settings, revision: str = "head") -> None:
    """Upgrade, or stop with one line when the database cannot be reached (no traceback)."""
    import sqlalchemy as sa

    from gigco import migrate

    try:
        migrate.upgrade(settings.database_url, revision)
    except sa.exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        url = sa.engine.make_url(settings.database_url)
        hint = ""
        if "does not exist" in reason and url.database:
            hint = f"; create it first: createdb {url.database} (or CREATE DATABASE {url.database})"
        raise click.ClickException(
            f"cannot migrate {url.render_as_string(hide_password=True)}: {reason}{hint}"
        ) from None


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from gigco import migrate

    migrate.downgrade(_settings().database_url, revision)


@db.command("current")
def db_current() -> None:
    """Show the database's revision."""
    from gigco import migrate

    migrate.current(_settings().database_url)


EMBEDDED_FILES = ("gigco.db", "broker.db", "celerybeat-schedule", dev_instance.TOKEN_FILE)


def _reset(settings: Settings) -> None:
    """Delete the embedded default's files and the kept operator token; refuse for a
    database GigCo does not own."""
    if not settings.embedded:
        raise click.ClickException(
            "--reset only deletes the embedded SQLite files; with GIGCO_DATABASE_URL set, "
            "drop and create that database yourself."
        )
    data = Path(settings.data_dir)
    # Each file and its SQLite companions (-wal, -shm, -journal) and beat's shelve files.
    for path in sorted(data.glob("*")):
        if path.is_file() and path.name.startswith(EMBEDDED_FILES):
            path.unlink()
    click.echo(f"gigco dev: reset {data}")


def _ensure_data_dir(settings: Settings) -> None:
    if settings.embedded or settings.broker_url.startswith("sqla+sqlite"):
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, or one line saying why there is none."""
    from werkzeug.serving import LISTEN_QUEUE, get_sockaddr, select_address_family

    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(LISTEN_QUEUE)
    except OSError as error:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror}; pick another port with --port"
        ) from None
    return sock


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--concurrency", default=4, show_default=True, type=int, help="Celery worker threads."
)
@click.option(
    "--reset",
    is_flag=True,
    help="Start clean: delete the embedded database, broker, beat schedule and operator token.",
)
def dev(host: str, port: int, concurrency: int, reset: bool) -> None:
    """Run the API, a Celery worker and beat together; Ctrl-C stops all three.

    With no GIGCO_DATABASE_URL/GIGCO_BROKER_URL, data and broker live in SQLite files
    under GIGCO_DATA_DIR (default ./.gigco). One gigco dev per data directory; without
    GIGCO_ADMIN_TOKEN the operator token is made up once and kept there.
    """
    settings = _settings()
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{host}:{port}"
    try:
        lock = dev_instance.claim(data_dir, url=url)
    except dev_instance.AlreadyRunning as error:
        raise click.ClickException(str(error)) from None
    with lock, _listen(host, port) as listener:
        if reset:
            _reset(settings)
        env = dict(os.environ)
        kept = ""
        if not settings.admin_token:
            token = dev_instance.operator_token(data_dir)
            env["GIGCO_ADMIN_TOKEN"] = os.environ["GIGCO_ADMIN_TOKEN"] = token
            settings = _settings()
            kept = f" (kept in {data_dir / dev_instance.TOKEN_FILE})"
        _migrate(settings)
        where = "embedded SQLite" if settings.embedded else "PostgreSQL"
        click.echo(f"gigco dev: API on {url} ({where}, broker {settings.broker_url})")
        click.echo(f"gigco dev: operator token {settings.admin_token}{kept}")
        _run_dev(settings, listener, (host, port), env=env, concurrency=concurrency)


def _run_dev(
    settings: Settings,
    listener: socket.socket,
    address: tuple[str, int],
    *,
    env: dict[str, str],
    concurrency: int,
) -> None:
    """The worker (with beat) as a child process, the API on ``listener`` until Ctrl-C."""
    from werkzeug.serving import make_server

    worker = processes.start(
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
            str(concurrency),
            "--loglevel",
            settings.log_level,
            "--schedule",
            str(Path(settings.data_dir) / "celerybeat-schedule"),
        ],
        env=env,
    )
    # SIGTERM (from a supervisor or `kill`) stops all three, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        from gigco.web import create_app

        app = create_app(settings)
        server = make_server(*address, app, threaded=True, fd=listener.fileno())
        server.log_startup()
        server.serve_forever()  # returns on Ctrl-C
    finally:
        processes.stop(worker, timeout=15)


SETTINGS_HEADER = "| variable | default | meaning |\n|---|---|---|"


def settings_markdown() -> str:
    """The README's settings table, from ``gigco.config`` (where every setting is defined)."""
    rows = (f"| `{name}` | {default} | {meaning} |" for name, default, meaning in documented())
    return "\n".join([SETTINGS_HEADER, *rows])


@main.command("settings")
@click.option("--markdown", is_flag=True, help="As the README's table (Markdown).")
def settings_command(markdown: bool) -> None:
    """Every environment variable GigCo reads, with its default and meaning."""
    if markdown:
        click.echo(settings_markdown())
        return
    for name, default, meaning in documented():
        click.echo(f"{name}\t{default.replace('`', '')}\t{meaning.replace('`', '')}")


@main.command()
@click.option("--url", default="http://127.0.0.1:5000", show_default=True, help="GigCo's API.")
@click.option("--admin-token", help="The operator's token [default: GIGCO_ADMIN_TOKEN].")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for each step.",
)
def demo(url: str, admin_token: str | None, timeout: float) -> None:
    """Drive one new job from sign-up to closed over the HTTP API; print its timeline."""
    from gigco.demo import DemoError, run_demo

    try:
        token = admin_token or _settings().admin_token
        run_demo(url=url, admin_token=token, timeout=timeout, out=sys.stdout)
    except DemoError as error:
        raise click.ClickException(str(error)) from None


@contextlib.contextmanager
def _session() -> Iterator[Session]:
    """One session on the configured database, committed on success."""
    from gigco.db import make_engine, session_factory

    engine = make_engine(_settings().database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


@main.group()
def token() -> None:
    """Bearer tokens of consumers and workers."""


@token.command("issue")
@click.option("--email", required=True, help="The account's email.")
@click.option(
    "--role",
    type=click.Choice(["consumer", "worker"]),
    help="Which account, when a consumer and a worker share the email.",
)
def token_issue(email: str, role: str | None) -> None:
    """Revoke the account's token and print a new one (a lost token's way back)."""
    from gigco.lifecycle import accounts
    from gigco.lifecycle.errors import DomainError
    from gigco.models import Role

    try:
        with _session() as session:
            who = accounts.account_by_email(session, email, Role(role) if role else None)
            new = accounts.rotate_token(session, who)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"# {who.role.value} {who.id} <{email}>: every older token is revoked", err=True)
    click.echo(new)


@main.command()
@click.option(
    "--city",
    default="berlin",
    show_default=True,
    type=click.Choice(sorted(CITIES)),
    help="Where the demo accounts live.",
)
@click.option("--workers", default=10, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--consumers", default=3, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--random-seed", type=int, help="Repeat the same places.")
def seed(city: str, workers: int, consumers: int, random_seed: int | None) -> None:
    """Sign up demo workers and consumers around a city and print their tokens."""
    from gigco.seed import seed as seed_accounts

    with _session() as session:
        made = seed_accounts(
            session, city=city, workers=workers, consumers=consumers, seed=random_seed
        )
    click.echo("role\tid\temail\tlat\tlng\ttoken")
    for account in made:
        click.echo(
            f"{account.role}\t{account.id}\t{account.email}\t"
            f"{account.lat}\t{account.lng}\t{account.token}"
        )


@main.command("export-ledger")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC).")
def export_ledger(start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Print charges, refunds and fees per day (UTC) as CSV, with a total row (finance)."""
    from gigco.lifecycle.ledger import csv_lines, ledger_days

    with _session() as session:
        days = ledger_days(session, start.date() if start else None, end.date() if end else None)
    for line in csv_lines(days):
        click.echo(line, nl=False)


@main.command("health")
@click.option("--ready", is_flag=True, help="Only what an API process needs: database, broker.")
@click.option(
    "--worker",
    "worker",
    metavar="NODENAME",
    help="The liveness probe of one worker (e.g. celery@$HOSTNAME): fails when work has "
    "waited past GIGCO_HEALTH_STALL_SECONDS and this worker finished no task in that time.",
)
def health_command(ready: bool, worker: str | None) -> None:
    """Print the system's health as JSON; exit 0 when ok, 1 when a part is down."""
    import json

    from gigco import health
    from gigco.db import make_engine, session_factory

    settings = _settings()
    engine = make_engine(
        settings.database_url,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        lock_timeout_ms=settings.db_lock_timeout_ms,
    )
    sessions = session_factory(engine)
    try:
        if worker:
            result = health.worker_probe(settings, sessions, worker, now=clock.now())
        else:
            parts = health.READY_PARTS if ready else health.PARTS
            result = health.check(settings, sessions, parts=parts)
    finally:
        engine.dispose()
    click.echo(json.dumps(result.as_dict(), indent=2))
    if not result.ok:
        click.echo(f"gigco health: down: {result.summary()}", err=True)
        sys.exit(1)
