"""docker-compose.yml, the Dockerfile and .dockerignore agree with the code they run.

Docker cannot run here, so this reads the files. PyYAML is not a dependency, so ``read_yaml``
reads the small subset of YAML the compose file is written in (block mappings and
sequences, one-line-per-item flow sequences, quoted and plain scalars, anchors, aliases and
``<<`` merges) and refuses anything else, so the file cannot be silently misread.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import json
import re
import runpy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import Celery

from gigco.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "api", "worker", "beat", "flower")
# Read by flowerconfig.py inside the Flower container, not by gigco.config.
FLOWER_ONLY = {"GIGCO_FLOWER_BASIC_AUTH"}
# Only the embedded default (gigco dev) uses it; containers run on PostgreSQL and Redis.
EMBEDDED_ONLY = {"GIGCO_DATA_DIR"}
SECRETS = {
    "GIGCO_ADMIN_TOKEN": "compose-operator-token-0123",
    "GIGCO_FLOWER_BASIC_AUTH": "ops:a-long-flower-password",
}


class YamlSubsetError(ValueError):
    """The file uses YAML this reader does not understand."""


class ComposeError(ValueError):
    """Compose would refuse to start: a required variable is missing."""


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    if quote:
        raise YamlSubsetError(f"a quoted scalar spans lines: {line.strip()!r}")
    return line.rstrip()


def _bracket_depth(text: str) -> int:
    depth, quote = 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[]":
            depth += 1 if ch == "[" else -1
    return depth


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, quote, current = [], None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == sep:
            parts.append(current)
            current = ""
            continue
        current += ch
    if quote:
        raise YamlSubsetError(f"unterminated quote in {text!r}")
    return [*parts, current]


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise YamlSubsetError(f"bad double-quoted scalar {text!r}")
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"bad single-quoted scalar {text!r}")
        return text[1:-1].replace("''", "'")
    if not text or text[0] in "{|>!%@`&*[]," or text.startswith("- "):
        raise YamlSubsetError(f"unsupported scalar {text!r}")
    if text.lower() in {"yes", "no", "on", "off", "y", "n"}:
        raise YamlSubsetError(f"ambiguous YAML 1.1 boolean {text!r}: quote it")
    if re.fullmatch(r"\d+(:\d+)+", text):
        raise YamlSubsetError(f"{text!r} is a base-60 number in YAML 1.1: quote it")
    if text in {"true", "false"}:
        return text == "true"
    if text in {"null", "~"}:
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _value(text: str, anchors: dict[str, Any]) -> Any:
    if text.startswith("*"):
        if text[1:] not in anchors:
            raise YamlSubsetError(f"unknown alias {text}")
        return anchors[text[1:]]
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlSubsetError(f"unterminated flow sequence {text!r}")
        inner = text[1:-1].strip()
        return [_scalar(item) for item in _split_outside_quotes(inner, ",")] if inner else []
    return _scalar(text)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for raw in text.splitlines():
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlSubsetError("tab in indentation")
        line = _strip_comment(raw)
        if not line.strip():
            continue
        if pending:  # inside a flow sequence that spans lines
            pending = (pending[0], f"{pending[1]} {line.strip()}")
        else:
            pending = (len(line) - len(line.lstrip()), line.strip())
        if _bracket_depth(pending[1]) <= 0:
            lines.append(pending)
            pending = None
    if pending:
        raise YamlSubsetError(f"unterminated flow sequence {pending[1]!r}")
    return lines


def _block(
    lines: list[tuple[int, str]], i: int, indent: int, anchors: dict[str, Any]
) -> tuple[Any, int]:
    if lines[i][1].startswith(("[", "*")):  # a flow sequence or alias on its own line(s)
        return _value(lines[i][1], anchors), i + 1
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            item = lines[i][1][2:].strip()
            if re.match(r"^[\w.-]+:( |$)", item):
                raise YamlSubsetError(f"mapping inside a sequence: {item!r}")
            items.append(_value(item, anchors))
            i += 1
        return items, i
    explicit: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        text = lines[i][1]
        if text.startswith("- "):
            raise YamlSubsetError(f"sequence item among mapping keys: {text!r}")
        key_text, sep, rest = text.partition(":")
        if not sep or (rest and not rest.startswith(" ")):
            raise YamlSubsetError(f"expected 'key: value', got {text!r}")
        key, rest = _scalar(key_text) if key_text[0] in "\"'" else key_text, rest.strip()
        anchor = None
        if rest.startswith("&"):
            anchor, _, rest = rest[1:].partition(" ")
            rest = rest.strip()
        i += 1
        if rest:
            value = _value(rest, anchors)
        elif i < len(lines) and lines[i][0] > indent:
            value, i = _block(lines, i, lines[i][0], anchors)
        else:
            value = None
        if anchor:
            anchors[anchor] = value
        if key == "<<":
            if not isinstance(value, dict):
                raise YamlSubsetError("<< merges a mapping only")
            merged.update(value)
        elif key in explicit:
            raise YamlSubsetError(f"duplicate key {key!r}")
        else:
            explicit[key] = value
    if i < len(lines) and lines[i][0] > indent:
        raise YamlSubsetError(f"unexpected indentation at {lines[i][1]!r}")
    return {**merged, **explicit}, i


def read_yaml(text: str) -> Any:
    """Parse the YAML subset described in this module's docstring."""
    lines = _logical_lines(text)
    if not lines:
        return None
    if lines[0][0] != 0:
        raise YamlSubsetError("the document must start at column 0")
    document, end = _block(lines, 0, 0, {})
    if end != len(lines):
        raise YamlSubsetError(f"unexpected line {lines[end][1]!r}")
    return document


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
            raise YamlSubsetError(f"write ${{{bare}}}, not ${bare}")
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
    return read_yaml((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    """The services, interpolated with the two secrets set."""
    return interpolate(compose["services"], SECRETS)


def _known_variables(path: Path) -> set[str]:
    return set(re.findall(r"GIGCO_[A-Z0-9_]+", path.read_text()))


@pytest.mark.parametrize(
    "text",
    [
        "a: |\n  block scalar\n",
        "a: {b: 1}\n",
        "a:\n  - b: 1\n",
        "a: yes\n",
        "a: 22:22\n",
        "a: 1\na: 2\n",
        "a: *nowhere\n",
        "a: [1, 2\n",
        "a:\n\t- 1\n",
    ],
    ids=["block", "flow-map", "seq-map", "yes", "base60", "dup", "alias", "flow", "tab"],
)
def test_the_reader_refuses_yaml_it_does_not_understand(text: str) -> None:
    with pytest.raises(YamlSubsetError):
        read_yaml(text)


def test_the_reader_resolves_anchors_and_merges() -> None:
    doc = read_yaml(
        "x-env: &env\n  A: '1'\n  B: two  # comment\n"
        "s:\n  one:\n    environment: *env\n"
        "  two:\n    environment:\n      <<: *env\n      B: three\n"
        '    command:\n      ["run", "--flag",\n       "x # not a comment"]\n'
    )
    assert doc["s"]["one"]["environment"] == {"A": "1", "B": "two"}
    assert doc["s"]["two"]["environment"] == {"A": "1", "B": "three"}
    assert doc["s"]["two"]["command"] == ["run", "--flag", "x # not a comment"]


def test_the_topology_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker",
        "beat",
        "flower",
        "adminer",
    }


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
    used = set(re.findall(r"GIGCO_[A-Z0-9_]+", (ROOT / "docker-compose.yml").read_text()))
    config = _known_variables(ROOT / "gigco" / "config.py")
    assert used - config == FLOWER_ONLY
    assert _known_variables(ROOT / "flowerconfig.py") >= FLOWER_ONLY
    # …and every setting gigco.config reads can be set through the shared environment.
    assert config - EMBEDDED_ONLY == set(compose["x-gigco-env"])


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
    flower = runpy.run_path(str(ROOT / "flowerconfig.py"))
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
    assert conditions("api") == {"migrate": migrated, "postgres": healthy, "redis": healthy}
    assert conditions("worker") == {"migrate": migrated, "redis": healthy}
    assert conditions("beat") == {"migrate": migrated, "redis": healthy}
    assert conditions("flower")["redis"] == healthy
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


def test_the_operator_tools_listen_on_localhost_only(services: dict[str, Any]) -> None:
    assert "--port=5555" in services["flower"]["command"]
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    assert services["adminer"]["ports"] == ["127.0.0.1:8080:8080"]
    assert services["adminer"]["environment"]["ADMINER_DEFAULT_SERVER"] == "postgres"


def test_the_image_holds_what_the_commands_need_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = " ".join(re.findall(r"^COPY (.+)$", dockerfile, flags=re.MULTILINE)).split()
    for needed in ("pyproject.toml", "README.md", "celeryconfig.py", "flowerconfig.py", "gigco"):
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
    for needed in ("pyproject.toml", "README.md", "celeryconfig.py", "flowerconfig.py", "gigco"):
        assert not is_ignored(needed), needed
