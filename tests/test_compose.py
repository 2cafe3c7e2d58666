"""docker-compose.yml, the Dockerfile and .dockerignore agree with the code they run.

Docker cannot run here, so this reads the files (PyYAML) and interpolates variables as
Compose does.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import re
import runpy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery

from gigco.broker import QUEUES, WEBHOOK_QUEUE
from gigco.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "api", "worker", "webhooks", "beat", "flower")
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


def test_webhook_deliveries_have_their_own_workers_and_every_queue_is_consumed(
    services: dict[str, Any],
) -> None:
    def queues(name: str) -> set[str]:
        command = services[name]["command"]
        return set(command[command.index("-Q") + 1].split(","))

    # A slow receiver holds a webhooks thread for up to the delivery timeout: never a step's.
    assert queues("webhooks") == {WEBHOOK_QUEUE}
    assert queues("worker") == set(QUEUES) - {WEBHOOK_QUEUE}
    webhooks = services["webhooks"]
    node = webhooks["command"][webhooks["command"].index("-n") + 1]
    assert node == "webhooks@%h"
    assert 'gigco health --worker "webhooks@$HOSTNAME"' in webhooks["healthcheck"]["test"][1]
    for pinned in ("container_name", "ports", "hostname"):
        assert pinned not in webhooks, f"webhooks has {pinned}: it could not be scaled"


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


def test_every_gigco_variable_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    used = set(re.findall(VARIABLE, (ROOT / "docker-compose.yml").read_text()))
    config = _known_variables(ROOT / "gigco" / "config.py")
    assert used <= config
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


def _resolve_celery_app(module_name: str) -> Celery:
    module = importlib.import_module(module_name)
    found = getattr(module, "app", None) or getattr(module, "celery", None)
    assert isinstance(found, Celery), module_name
    return found


def test_every_command_runs_something_that_exists(services: dict[str, Any]) -> None:
    bin_dir = Path(sys.executable).parent
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert (bin_dir / command[0]).exists(), f"{name}: {command[0]} is not installed"
        if command[0] == "gunicorn":
            module_name, _, call = command[-1].partition(":")
            assert call.endswith("()")
            factory = getattr(importlib.import_module(module_name), call[:-2])
            assert callable(factory)
        elif command[0] == "celery":
            assert command[1] == "-A"
            _resolve_celery_app(command[2])
            assert command[3] in {"worker", "beat", "flower"}
            if command[3] == "flower":
                importlib.import_module("flower")
        else:
            assert command[0] == "gigco"
            (script,) = importlib.metadata.entry_points(group="console_scripts", name="gigco")
            group = script.load()
            for word in command[1:]:
                group = group.commands[word]
            assert group.name == "upgrade"


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
    assert worker["command"][:4] == ["celery", "-A", "gigco.tasks", "worker"]
    for pinned in ("container_name", "ports", "hostname"):
        assert pinned not in worker, f"worker has {pinned}: it could not be scaled"
    assert beat["command"][:4] == ["celery", "-A", "gigco.tasks", "beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1
    beats = [
        name
        for name, s in services.items()
        if "beat" in s.get("command", []) or {"-B", "--beat"} & set(s.get("command", []))
    ]
    assert beats == ["beat"]


def test_the_api_serves_on_8000_and_is_healthchecked_on_healthz(services: dict[str, Any]) -> None:
    api = services["api"]
    command = api["command"]
    assert command[0] == "gunicorn" and command[-1] == "gigco.web:create_app()"
    assert command[command.index("--bind") + 1] == "0.0.0.0:8000"
    assert api["ports"] == ["8000:8000"]
    probe = " ".join(api["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in probe


def test_a_stalled_worker_fails_its_probe_and_is_replaced(services: dict[str, Any]) -> None:
    worker = services["worker"]
    probe = worker["healthcheck"]["test"]
    assert probe[0] == "CMD-SHELL"
    assert 'gigco health --worker "celery@$HOSTNAME"' in probe[1]
    # The probe kills the worker it judged stalled (by the pid file its command writes)…
    pidfile = worker["command"][worker["command"].index("--pidfile") + 1]
    assert f"kill -KILL $(cat {pidfile})" in probe[1]
    # …and the restart policy brings a new one.
    assert worker["restart"] == "unless-stopped"
    health = importlib.import_module("gigco.cli").main.commands["health"]
    assert "worker" in {p.name for p in health.params}


def test_the_operator_tools_listen_on_localhost_only(services: dict[str, Any]) -> None:
    assert "--port=5555" in services["flower"]["command"]
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
