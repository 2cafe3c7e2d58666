"""docker-compose.yml, the Dockerfile and .dockerignore agree with the code they run.

Docker cannot run here, so this reads the files (PyYAML) and interpolates variables as
Compose does; each command is parsed by the program it runs (celery, gigco, gunicorn), the
queues come from GigCo's Celery app, and the worker probes run under a real shell.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import re
import runpy
import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from flask import Flask
from gunicorn.config import Config as GunicornConfig

from gigco.cli import main as gigco_cli
from gigco.config import CHOOSING, ConfigError, Settings, load_settings
from gigco.tasks import app
from gigco.tasks.names import DELIVER_TASK
from gigco.web import create_app

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "api", "worker", "webhooks", "beat", "flower")
WORKERS = ("worker", "webhooks")
# Only the embedded default (gigco dev) uses it; containers run on PostgreSQL and Redis.
# Ours, and the OpenTelemetry ones that gigco.config reads (tracing).
VARIABLE = r"\b(?:GIGCO|OTEL)_[A-Z0-9_]+"
EMBEDDED_ONLY = {"GIGCO_DATA_DIR"}
# Only the flower service is given it, not the shared environment of every process.
FLOWER_ONLY = {"GIGCO_FLOWER_BASIC_AUTH"}
SECRETS = {
    "GIGCO_ADMIN_TOKEN": "compose-operator-token-0123",
    "GIGCO_FLOWER_BASIC_AUTH": "ops:a-long-flower-password",
}


class ComposeError(ValueError):
    """Compose would refuse to start: a required variable is missing."""


_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_]\w*))")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Substitute ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$`` as Compose does."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        dollar, name, op, arg, bare = match.groups()
        if dollar:
            return "$"
        if bare:
            raise ComposeError(f"write ${{{bare}}}, not ${bare}")
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and not current)
        if op and op.endswith("?") and missing:
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed but not interpolated."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    """The services, interpolated with the two secrets set."""
    return interpolate(compose["services"], SECRETS)


def _parse(argv: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``argv`` parsed by the real command line of ``celery`` or ``gigco``, which refuses an
    unknown command or option: each command on the way down, with its parameters."""
    group = {"celery": celery_cli, "gigco": gigco_cli}[argv[0]]
    ctx = group.make_context(argv[0], list(argv[1:]))
    found = [(argv[0], ctx.params)]
    while isinstance(ctx.command, click.Group):
        if ctx.command is celery_cli:  # what celery's own group callback sets up
            ctx.obj = CLIContext(app=find_app(ctx.params["app"]), no_color=True, workdir=None)
        with warnings.catch_warnings(action="ignore", category=DeprecationWarning):
            rest = [*ctx.protected_args, *ctx.args]  # click 9 keeps them all in ctx.args
        name, command, args = ctx.command.resolve_command(ctx, rest)
        assert name is not None and command is not None, argv
        ctx = command.make_context(name, args, parent=ctx)
        found.append((name, ctx.params))
    return found


def _celery_worker(services: dict[str, Any], name: str) -> dict[str, Any]:
    """The parameters of service ``name``'s ``celery worker`` command."""
    command, params = _parse(services[name]["command"])[-1]
    assert command == "worker", name
    return params


def _gunicorn(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by gunicorn's own argument parser."""
    assert argv[0] == "gunicorn"
    return GunicornConfig().parser().parse_args(argv[1:])


def _known_variables(path: Path) -> set[str]:
    return set(re.findall(VARIABLE, path.read_text()))


def test_the_topology_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "rabbitmq",
        "migrate",
        "api",
        "worker",
        "webhooks",
        "beat",
        "flower",
        "adminer",
    }


def test_every_queue_the_app_sends_to_is_consumed_and_webhooks_have_their_own_workers(
    services: dict[str, Any],
) -> None:
    """Read from GigCo's Celery app: the queues it declares and the ones its tasks route to."""
    sent_to = {queue.name for queue in app.conf.task_queues} | {
        app.amqp.router.route({}, name)["queue"].name
        for name in app.tasks
        if not name.startswith("celery.")
    }
    consumed = {name: set(_celery_worker(services, name)["queues"]) for name in WORKERS}
    assert set().union(*consumed.values()) == sent_to
    # A slow receiver holds a webhooks thread for up to the delivery timeout: never a step's.
    deliveries = app.amqp.router.route({}, DELIVER_TASK)["queue"].name
    assert consumed["webhooks"] == {deliveries}
    assert deliveries not in consumed["worker"]
    for pinned in ("container_name", "ports", "hostname"):
        assert pinned not in services["webhooks"], f"webhooks has {pinned}: it could not be scaled"


def test_the_data_services_are_healthchecked_and_keep_their_data(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    postgres, redis = services["postgres"], services["redis"]
    assert postgres["image"] == "postgres:16"
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert redis["image"] == "redis:7"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    mounts = {
        name: dict(v.split(":", 1) for v in services[name]["volumes"])
        for name in ("postgres", "redis")
    }
    assert mounts["postgres"].get("pgdata") == "/var/lib/postgresql/data"
    assert mounts["redis"].get("redisdata") == "/data"
    assert {"pgdata", "redisdata"} <= set(compose["volumes"])


def test_every_gigco_process_runs_the_app_image_with_the_shared_environment(
    compose: dict[str, Any],
) -> None:
    shared = compose["x-gigco-env"]
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert (service["image"], service["build"]) == ("gigco:latest", "."), name
        assert service["environment"].items() >= shared.items(), name


def test_the_shared_environment_is_a_valid_production_configuration(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    env = interpolate(compose["x-gigco-env"], SECRETS)
    settings = load_settings(env)
    assert not settings.embedded
    database = urlsplit(settings.database_url)
    postgres = services["postgres"]["environment"]
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
    assert (database.username, database.password, database.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )
    broker = urlsplit(settings.broker_url)
    assert (broker.scheme, broker.hostname) == ("redis", "redis")
    assert settings.admin_token == SECRETS["GIGCO_ADMIN_TOKEN"]
    defaults = Settings(database_url="", broker_url="")
    for field in ("offer_ttl_seconds", "match_max_rounds", "sweep_interval_seconds"):
        assert getattr(settings, field) == getattr(defaults, field)

    tuned = load_settings(
        interpolate(compose["x-gigco-env"], {**SECRETS, "GIGCO_MATCH_MAX_ROUNDS": "3"})
    )
    assert tuned.match_max_rounds == 3


def test_every_variable_compose_sets_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    """Set to nonsense, each one either is refused or changes the settings."""
    shared = interpolate(compose["x-gigco-env"], SECRETS)
    flower = interpolate(compose["services"]["flower"]["environment"], SECRETS)
    assert set(shared) <= set(flower)
    for name in flower:
        # Read by the defaults, or once another setting chooses it (the Stripe gateway's).
        for choice in ({}, *CHOOSING):
            try:
                changed = load_settings({**flower, **choice, name: "nonsense!"})
            except ConfigError:
                break
            if changed != load_settings({**flower, **choice}):
                break
        else:
            raise AssertionError(f"{name}: gigco.config does not read it")
    config = _known_variables(ROOT / "gigco" / "config.py")
    # …and every setting gigco.config reads can be set through the shared environment.
    assert config - EMBEDDED_ONLY - FLOWER_ONLY == set(compose["x-gigco-env"])
    assert set(compose["services"]["flower"]["environment"]) >= FLOWER_ONLY


def test_compose_refuses_to_start_without_the_secrets(compose: dict[str, Any]) -> None:
    with pytest.raises(ComposeError, match="GIGCO_ADMIN_TOKEN"):
        interpolate(compose["services"], {})
    with pytest.raises(ComposeError, match="GIGCO_FLOWER_BASIC_AUTH"):
        interpolate(compose["services"], {"GIGCO_ADMIN_TOKEN": SECRETS["GIGCO_ADMIN_TOKEN"]})
    with pytest.raises(ComposeError, match="GIGCO_ADMIN_TOKEN"):
        interpolate(compose["services"], {**SECRETS, "GIGCO_ADMIN_TOKEN": ""})


def test_flower_gets_the_basic_auth_that_flowerconfig_reads(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = services["flower"]["environment"]
    monkeypatch.setenv("GIGCO_FLOWER_BASIC_AUTH", env["GIGCO_FLOWER_BASIC_AUTH"])
    flower = runpy.run_path(str(ROOT / "gigco" / "tasks" / "flowerconfig.py"))
    assert flower["basic_auth"] == [SECRETS["GIGCO_FLOWER_BASIC_AUTH"]]


def test_every_command_is_one_its_program_accepts(services: dict[str, Any]) -> None:
    """Each app service's command parses with the real command line of what it runs."""
    bin_dir = Path(sys.executable).parent
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert (bin_dir / command[0]).exists(), f"{name}: {command[0]} is not installed"
        if command[0] == "gunicorn":
            module_name, _, call = _gunicorn(command).args[0].partition(":")
            assert call.endswith("()"), name
            assert isinstance(getattr(importlib.import_module(module_name), call[:-2])(), Flask)
            continue
        found = _parse(command)
        if command[0] == "celery":
            assert found[0][1]["app"] == "gigco.tasks", name
            assert find_app("gigco.tasks") is app
            if found[-1][0] == "flower":
                importlib.import_module("flower")
    assert [n for n, _ in _parse(services["migrate"]["command"])] == ["gigco", "db", "upgrade"]


def test_dependencies_wait_for_health_and_for_the_migration(services: dict[str, Any]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name]["depends_on"].items()}

    healthy, migrated = "service_healthy", "service_completed_successfully"
    assert conditions("migrate") == {"postgres": healthy}
    brokers = {"redis": healthy, "rabbitmq": healthy}
    assert conditions("api") == {"migrate": migrated, "postgres": healthy, **brokers}
    assert conditions("worker") == {"migrate": migrated, **brokers}
    assert conditions("beat") == {"migrate": migrated, **brokers}
    assert conditions("flower") == brokers
    # RabbitMQ runs only in its profile: waiting on it must not be required without it.
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    for name in ("api", "worker", "beat", "flower"):
        assert services[name]["depends_on"]["rabbitmq"]["required"] is False, name
    for name, service in services.items():
        for target, condition in conditions(name).items() if "depends_on" in service else ():
            if condition == healthy:
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
            if condition == migrated:
                assert services[target]["restart"] == "no", f"{target} must be one-shot"
    assert services["migrate"]["command"] == ["gigco", "db", "upgrade"]


def test_workers_scale_and_there_is_exactly_one_beat(services: dict[str, Any]) -> None:
    worker, beat = services["worker"], services["beat"]
    for pinned in ("container_name", "ports", "hostname"):
        assert pinned not in worker, f"worker has {pinned}: it could not be scaled"
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1
    runs_beat = []
    for name in APP_SERVICES:
        if services[name]["command"][0] != "celery":
            continue
        command, params = _parse(services[name]["command"])[-1]
        if command == "beat" or (command == "worker" and params.get("beat")):
            runs_beat.append(name)
    assert runs_beat == ["beat"]


def test_the_api_serves_on_8000_and_its_probe_asks_a_health_endpoint(
    services: dict[str, Any], settings: Settings
) -> None:
    api = services["api"]
    (bind,) = _gunicorn(api["command"]).bind
    assert bind == "0.0.0.0:8000"
    assert api["ports"] == ["8000:8000"]
    kind, *probe = api["healthcheck"]["test"]
    assert kind == "CMD" and probe[:2] == ["python", "-c"]
    (url,) = re.findall(r"https?://[^'\"]+", probe[2])
    where = urlsplit(url)
    assert (where.hostname, where.port) == ("127.0.0.1", 8000)
    endpoint, _ = create_app(settings).url_map.bind("localhost").match(where.path)
    assert endpoint.startswith("health."), endpoint


@pytest.mark.parametrize("name", WORKERS)
def test_a_worker_probe_asks_gigco_health_about_that_worker_and_kills_it_when_stalled(
    services: dict[str, Any], name: str, tmp_path: Path
) -> None:
    """The probe runs under a shell with a stand-in ``gigco`` that records its arguments and
    answers as told; the pid file the probe reads is the worker's own (moved into tmp_path)."""
    service = services[name]
    worker = _celery_worker(services, name)
    kind, probe = service["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert worker["pidfile"] in probe
    pidfile = tmp_path / "worker.pid"
    stand_in = tmp_path / "bin" / "gigco"
    stand_in.parent.mkdir()
    stand_in.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_FILE"\nexit "$ANSWER"\n')
    stand_in.chmod(0o755)
    env = {
        "PATH": f"{stand_in.parent}:/usr/bin:/bin",
        "HOSTNAME": socket.gethostname(),  # what Compose sets, and what celery's %h expands to
        "ARGS_FILE": str(tmp_path / "args"),
    }
    stalled = subprocess.Popen(["sleep", "60"])
    try:
        pidfile.write_text(f"{stalled.pid}\n")
        script = probe.replace(worker["pidfile"], str(pidfile))
        healthy = subprocess.run(["sh", "-c", script], env={**env, "ANSWER": "0"}, timeout=10)
        assert healthy.returncode == 0
        assert stalled.poll() is None
        args = (tmp_path / "args").read_text().splitlines()
        ((_, health),) = [(n, p) for n, p in _parse(["gigco", *args]) if n == "health"]
        assert health["worker"] == worker["hostname"]  # this very worker's node name
        failing = subprocess.run(["sh", "-c", script], env={**env, "ANSWER": "1"}, timeout=10)
        assert failing.returncode != 0
        assert stalled.wait(timeout=5) == -signal.SIGKILL
    finally:
        if stalled.poll() is None:
            stalled.kill()
            stalled.wait()
    # …and the restart policy brings a new one.
    assert service["restart"] == "unless-stopped"


def test_the_operator_tools_listen_on_localhost_only(services: dict[str, Any]) -> None:
    command, params = _parse(services["flower"]["command"])[-1]
    assert command == "flower"
    options = dict(arg.removeprefix("--").split("=", 1) for arg in params["tornado_argv"])
    assert options["port"] == "5555"
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    assert services["adminer"]["ports"] == ["127.0.0.1:8080:8080"]
    assert services["adminer"]["environment"]["ADMINER_DEFAULT_SERVER"] == "postgres"


def test_the_image_holds_what_the_commands_need_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = " ".join(re.findall(r"^COPY (.+)$", dockerfile, flags=re.MULTILINE)).split()
    for needed in ("pyproject.toml", "README.md", "celeryconfig.py", "gigco"):
        assert needed in copied, needed
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}

    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def is_ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in ignored)

    for secret_or_bulk in (".env", ".venv", ".git", ".gigco", "tests"):
        assert is_ignored(secret_or_bulk), secret_or_bulk
    for needed in ("pyproject.toml", "README.md", "celeryconfig.py", "gigco"):
        assert not is_ignored(needed), needed
