"""The ``gigco`` command: ``gigco dev``, ``gigco db upgrade``, ``gigco demo``, ``gigco health``."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import click

from gigco.config import ConfigError, Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def main() -> None:
    """GigCo: a gig marketplace on Flask, PostgreSQL and Celery."""


@main.group()
def db() -> None:
    """Database migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from gigco import migrate

    settings = _settings()
    _ensure_data_dir(settings)
    migrate.upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


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


def _ensure_data_dir(settings: Settings) -> None:
    if settings.embedded or settings.broker_url.startswith("sqla+sqlite"):
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--concurrency", default=4, show_default=True, type=int, help="Celery worker threads."
)
def dev(host: str, port: int, concurrency: int) -> None:
    """Run the API, a Celery worker and beat together; Ctrl-C stops all three.

    With no GIGCO_DATABASE_URL/GIGCO_BROKER_URL, data and broker live in SQLite files
    under GIGCO_DATA_DIR (default ./.gigco).
    """
    settings = _settings()
    _ensure_data_dir(settings)
    env = dict(os.environ)
    if not settings.admin_token:
        env["GIGCO_ADMIN_TOKEN"] = os.environ["GIGCO_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
        settings = _settings()
    from gigco import migrate

    migrate.upgrade(settings.database_url)
    where = "embedded SQLite" if settings.embedded else "PostgreSQL"
    click.echo(f"gigco dev: API on http://{host}:{port} ({where}, broker {settings.broker_url})")
    click.echo(f"gigco dev: operator token {settings.admin_token}")
    worker = subprocess.Popen(
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
            "INFO",
            "--schedule",
            str(Path(settings.data_dir) / "celerybeat-schedule"),
        ],
        env=env,
        start_new_session=True,
    )
    # SIGTERM (from a supervisor or `kill`) stops all three, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        from gigco.web import create_app

        create_app(settings).run(host=host, port=port, threaded=True, use_reloader=False)
    finally:
        _stop(worker)


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
    from gigco.db import make_engine, session_factory, utcnow

    settings = _settings()
    engine = make_engine(
        settings.database_url,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        lock_timeout_ms=settings.db_lock_timeout_ms,
    )
    sessions = session_factory(engine)
    try:
        if worker:
            result = health.worker_probe(settings, sessions, worker, now=utcnow())
        else:
            parts = health.READY_PARTS if ready else health.PARTS
            result = health.check(settings, sessions, parts=parts)
    finally:
        engine.dispose()
    click.echo(json.dumps(result.as_dict(), indent=2))
    if not result.ok:
        click.echo(f"gigco health: down: {result.summary()}", err=True)
        sys.exit(1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
